"""pygls' protocol, answering malformed requests.

pygls logs a request whose params do not match the spec and drops it, so the client waits for a
reply forever. Here such a request gets an InvalidParams error naming what is wrong.
"""

from __future__ import annotations

from typing import Any

import cattrs
from pygls.exceptions import JsonRpcInvalidParams
from pygls.protocol import JsonRPCRequestMessage, LanguageServerProtocol


class _Answered:
    """Stands in for a request already answered with an error while it was read."""

    jsonrpc = None


class Protocol(LanguageServerProtocol):
    def structure_message(self, data: dict[str, Any]):
        # json.loads calls this for every object, innermost first; only whole requests matter here.
        if not ("jsonrpc" in data and "id" in data and "method" in data):
            return super().structure_message(data)
        request_type = self.get_message_type(data["method"]) or JsonRPCRequestMessage
        try:
            return self._converter.structure(data, request_type)
        except Exception as exc:  # noqa: BLE001 — cattrs reports bad params many ways
            why = "; ".join(cattrs.transform_error(exc, path="request")) if isinstance(exc, ExceptionGroup) else exc
            error = JsonRpcInvalidParams(f"invalid params for {data['method']}: {why}")
            self._send_response(data["id"], error=error.to_response_error())
            return _Answered()

    def handle_message(self, message) -> None:
        if not isinstance(message, _Answered):
            super().handle_message(message)

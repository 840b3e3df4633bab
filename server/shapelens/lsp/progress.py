"""window/workDoneProgress around work that turns out to be slow."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from typing import TypeVar

from lsprotocol import types
from pygls.lsp.server import LanguageServer

T = TypeVar("T")
AFTER_S = 0.5  # quicker probes would only make the progress indicator flicker


async def reported(ls: LanguageServer, work: Awaitable[T], message: str) -> T:
    """Await `work`; if it takes longer than AFTER_S and the client supports progress, report it."""
    task = asyncio.ensure_future(work)
    token: str | None = None
    try:
        done, _ = await asyncio.wait({task}, timeout=AFTER_S)
        if not done and ls.client_capabilities.window and ls.client_capabilities.window.work_done_progress:
            created = f"shapelens/probe/{uuid.uuid4()}"
            try:
                await ls.work_done_progress.create_async(created)
                ls.work_done_progress.begin(created, types.WorkDoneProgressBegin(title="shapelens", message=message))
                token = created  # only a begun progress gets an end
            except Exception:  # noqa: BLE001 — a client that refuses progress still gets the result
                pass
        return await task
    except asyncio.CancelledError:
        task.cancel()
        raise
    finally:
        if token is not None:
            ls.work_done_progress.end(token, types.WorkDoneProgressEnd())
            ls.work_done_progress.tokens.pop(token, None)

"""The probe worker: imports torch once, then forks one child per probe.

Protocol: JSON lines. In: {"id", "op": "probe", "plan", "options"} | {"op": "cancel", "id"} |
{"op": "no_warm_up"} | {"op": "shutdown"}. Out: {"event": "ready", ...} once, then {"id", "ok",
"result" | "error"} per probe. A child that hangs past its timeout, crashes or exhausts its
memory is killed; its request still gets an answer saying where it was. The parent never runs
user code. A child may not fork: the probes it needs run for it (re-probes, second assumptions)
the parent forks as helper children on its request (worker/children.py).
"""

from __future__ import annotations

import faulthandler
import gc
import json
import os
import re
import resource
import selectors
import signal
import socket
import sys
import time
import traceback
import warnings

PROTOCOL_FD = os.dup(1)
os.dup2(2, 1)  # anything printed by mistake goes to stderr, never into the protocol stream

warnings.filterwarnings("ignore")

from shapelens import timing  # noqa: E402 — torch-free and tiny

timing.mark("worker: process started", timing.process_start())


def _hello() -> None:
    """Where torch is, before importing it (seconds): the client keys its disk cache of torch's
    names by this and can plan with it while the import runs."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin:
        return  # no torch here: the import below fails and says so
    try:  # torch/version.py, read rather than imported (importlib.metadata scans every dist)
        with open(os.path.join(os.path.dirname(spec.origin), "version.py"), encoding="utf-8") as f:
            version = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", f.read(), re.M)
    except OSError:
        return
    if version:
        from shapelens.probe.protocol import hello

        os.write(PROTOCOL_FD, (json.dumps({**hello(spec.origin, version.group(1)), "timing": timing.unsent()})
                               + "\n").encode())


_hello()
import torch  # noqa: E402 — after the fd shuffle, so torch's own output cannot corrupt the protocol

from shapelens.probe import protocol  # noqa: E402
from shapelens.probe.worker import answers, pipes, preimport, reaper, sandbox, warmup  # noqa: E402
from shapelens.probe.worker import children as kids  # noqa: E402
from shapelens.probe.worker.answers import json_lines  # noqa: E402
from shapelens.probe.worker.children import Child  # noqa: E402
from shapelens.probe.worker.pipes import read_all, write_all  # noqa: E402

GRACE_S = 1.5
WARM_UP_AFTER_S = 0.3  # quiet time before a warm-up step
MAX_CHILDREN = max(os.cpu_count() or 1, 1)  # probes run in parallel, one child per core
QUEUE: list[dict] = []
# A probe forked before the warm-up finished loads torch's lazy parts itself (torch._dynamo,
# sympy: seconds on a busy machine); that time must not read as the model's timeout.
COLD_EXTRA_S = 10.0
EXIT_POLL_S = 0.25  # how often a child's exit is looked for while its pipe stays open


def send(msg: dict) -> None:
    write_all(PROTOCOL_FD, (protocol.dumps({**msg, "timing": timing.unsent()} if timing.ENABLED else msg) + "\n").encode())


REAL_EXIT = os._exit


def child_main(write_fd: int, plan: dict, options: dict) -> None:
    sandboxed = sandbox.enter(write_fd, {f["path"] for f in plan.get("files", [])})
    helping = options.get("helper")
    pipes.connect(write_fd, helper=helping is not None)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1) if os.environ.get("SHAPELENS_WORKER_DEBUG") else (0, 1, 2):
        os.dup2(devnull, fd)
    os.setsid()
    limit_mb = int(options.get("memory_mb", 0) or 0)
    if limit_mb > 0 and options.get("device", "meta") != "cuda":
        try:
            with open("/proc/self/statm") as f:
                vm_bytes = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
            cap = vm_bytes + limit_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        except (OSError, ValueError):
            pass

    from shapelens.probe.worker import run
    from shapelens.probe.worker import state as probe_state

    def out(msg: dict) -> None:
        write_all(write_fd, (protocol.dumps(msg) + "\n").encode())

    # Where the probe is, for a child that dies without a word (SIGKILL from the OOM killer).
    probe_state.on_progress = None if helping else lambda path, line: out({"at": [path, line]})

    def on_alarm(signum, frame):
        raise probe_state.ProbeTimeout()

    # A crash (segfault, abort) or a hang inside C code still tells the parent where it was.
    dump = os.fdopen(os.dup(write_fd), "w")
    faulthandler.enable(file=dump)
    seconds = float(helping["seconds"] if helping else options.get("timeout", 5.0))
    faulthandler.dump_traceback_later(seconds + GRACE_S / 2, exit=True, file=dump)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    torch.set_num_threads(1)
    try:
        if helping:
            answer = run.run_helper(plan, options, helping)
            signal.setitimer(signal.ITIMER_REAL, 0)
            out(protocol.answer(helping["seq"], answer))
            REAL_EXIT(0)
        if options.get("trusted", True):
            result = run.run_probe(plan, options)
        else:
            from shapelens.probe.worker import static

            result = static.run_static(plan)
        signal.setitimer(signal.ITIMER_REAL, 0)
        faulthandler.cancel_dump_traceback_later()
        usage = resource.getrusage(resource.RUSAGE_SELF)  # CPU time: what a busy machine's wall time hides
        result["stats"].update(peak_rss_kb=usage.ru_maxrss, cpu_ms=(usage.ru_utime + usage.ru_stime) * 1000)
        result["stats"]["sandbox"] = sandboxed
        sandbox.add_notes(result["findings"])
        out({"result": result})
    except BaseException as exc:  # noqa: BLE001 — report anything as an internal error
        signal.setitimer(signal.ITIMER_REAL, 0)
        state = probe_state.STATE
        out({"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc(limit=8),
             "at": list(state.at) if state and state.at else None})
    REAL_EXIT(0)


def main() -> int:
    timing.mark("worker: torch imported")
    import torch.nn.functional  # noqa: F401

    from shapelens.probe.worker import run  # noqa: F401 — before ready: every child needs it

    reaper.become_subreaper()
    sandbox.prepare()
    warmup.WARMING[:] = warmup.warm_up_steps()
    quiet_since = time.monotonic()
    timing.mark("worker: ready")
    send({"event": "ready", "pid": os.getpid(), "torch": torch.__version__, "python": sys.version.split()[0],
          "cuda": False})
    sel = selectors.DefaultSelector()
    stdin_fd = sys.stdin.fileno()
    os.set_blocking(stdin_fd, False)
    sel.register(stdin_fd, selectors.EVENT_READ, None)
    children: dict[int, Child] = {}  # by read fd
    pending = b""
    running = True
    while running or children:
        timeout = None
        if children:
            timeout = min(max(0.0, min(c.deadline for c in children.values()) - time.monotonic()), EXIT_POLL_S)
        # Warm up only when nothing happened for a moment and no probe runs: never compete with
        # a probe for the cores, nor delay one a client is about to send (the CLI's first).
        idle = warmup.WARMING and not children
        if idle:
            timeout = max(0.0, quiet_since + WARM_UP_AFTER_S - time.monotonic())
        events = sel.select(timeout)
        if events:
            quiet_since = time.monotonic()
        if idle and not events:
            warmup.warm_now(1)  # nothing to read: a warm-up step now
        for key, mask in events:
            if key.data is None:
                try:
                    chunk = os.read(stdin_fd, 1 << 20)
                except BlockingIOError:
                    continue
                if not chunk:  # the client went away: stop everything
                    running = False
                    sel.unregister(stdin_fd)
                    for c in children.values():
                        _kill(c)
                    continue
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    if line.strip():
                        running = handle(json.loads(line), children, sel) and running
            else:
                child = key.data
                if children.get(child.fd) is not child:
                    continue  # finished meanwhile (a helper with its probe), its fd maybe reused
                if mask & selectors.EVENT_WRITE:
                    kids.flush(child, sel)
                if not mask & selectors.EVENT_READ:
                    continue
                try:
                    chunk = os.read(child.fd, 1 << 20)
                except OSError:
                    chunk = b""
                if chunk:
                    child.buf += chunk
                    if not on_requests(child, children, sel):
                        continue  # failed for a malformed request
                    if not answers.answered(child.buf, helper=child.requester is not None):
                        continue
                finish(child, children, sel)  # its answer is in (or it closed its channel)
        now = time.monotonic()
        for child in list(children.values()):
            if children.get(child.fd) is not child:
                continue
            if reaper.exited(child.pid):  # gone, though something it started holds its pipe open
                finish(child, children, sel)
            elif now >= child.deadline:
                _kill(child)
                finish(child, children, sel, timed_out=True)
    reaper.kill_strays(set())
    return 0


def handle(msg: dict, children: dict, sel) -> bool:
    op = msg.get("op")
    if op == "shutdown":
        for c in children.values():
            _kill(c)
        return False
    if op == "cancel":
        for queued in [q for q in QUEUE if q.get("id") == msg.get("id")]:
            QUEUE.remove(queued)
            send({"id": queued.get("id"), "ok": False, "cancelled": True, "error": "cancelled"})
        for c in children.values():
            if c.id == msg.get("id"):
                c.cancelled = True
                _kill(c)
        return True
    if op == "torch_names":
        from shapelens.probe.worker.names import build_table

        send({"id": msg.get("id"), "ok": True, "result": build_table()})
        return True
    if op == "ping":
        send({"id": msg.get("id"), "ok": True, "result": {"pong": True}})
        return True
    if op == "no_warm_up":  # one probe, then shutdown (the CLI's one file)
        warmup.skip()
        return True
    if op != "probe":
        send({"id": msg.get("id"), "ok": False, "error": f"unknown op {op!r}"})
        return True
    if kids.probes(children) >= MAX_CHILDREN:
        QUEUE.append(msg)
        return True
    spawn(msg, children, sel)
    return True


def spawn(msg: dict, children: dict, sel) -> None:
    options = msg.get("options", {})
    preimport.before_fork(msg.get("plan", {}), options)  # installed packages: once, not per child
    if warmup.WARMING and children:
        # Busy (a batch): the worker never idles to warm up, so every child would load torch's
        # lazy parts itself. The first probe went out cold; warm up before forking more.
        warmup.warm_now()
    if warmup.cold():
        options = {**options, "timeout": float(options.get("timeout", 5.0)) + COLD_EXTRA_S}
    fork_child(msg["plan"], options, msg.get("id"), float(options.get("timeout", 5.0)) + GRACE_S, children, sel)


def fork_child(plan: dict, options: dict, req_id, seconds: float, children: dict, sel,
               requester: Child | None = None) -> Child:
    """A probe child (or a helper, for `requester`), its channel a socket: it both answers and asks."""
    ours, theirs = (s.detach() for s in socket.socketpair())
    gc.freeze()
    pid = os.fork()
    if pid == 0:
        os.close(ours)
        try:
            child_main(theirs, plan, options)
        finally:
            os._exit(1)
    os.close(theirs)
    timing.mark(f"worker: {'helper' if requester else 'probe'} forked")
    os.set_blocking(ours, False)
    child = Child(req_id, pid, ours, time.monotonic() + seconds, plan, options, requester)
    children[ours] = child
    sel.register(ours, selectors.EVENT_READ, child)
    return child


def on_requests(child: Child, children: dict, sel) -> bool:
    """Start the helpers `child` asks for. False when it sent a malformed request (or, being a
    helper, any): then that probe is failed and finished."""
    for request in kids.new_requests(child):
        if isinstance(request, str) or child.requester is not None:
            why = request if isinstance(request, str) else "a helper asks for no helpers"
            child.failure = (f"the probe sent a malformed request ({why[:200]}); did the file's code write to "
                             "the probe's channel?")
            finish(child, children, sel)
            return False
        if child.helper is not None:  # it stopped waiting for the last one
            end_helper(child, children, sel)
        seconds = kids.seconds_for(child, request, time.monotonic(), GRACE_S)
        if seconds <= pipes.MIN_SECONDS or child.helpers >= kids.MAX_HELPERS:
            kids.relay(child, request["seq"], None, sel)
            continue
        if warmup.WARMING:
            warmup.warm_now()  # once, not in every helper (the asking probe waits meanwhile)
        child.helpers += 1
        child.helper = fork_child(child.plan, kids.helper_options(child, request, seconds), child.id,
                                  seconds + kids.HELPER_GRACE_S, children, sel, requester=child)
    return True


def end_helper(child: Child, children: dict, sel) -> None:
    """Kill the helper `child` waits for, telling it nothing (it stopped waiting, or it ends)."""
    helper, child.helper = child.helper, None
    if helper is not None:
        _kill(helper)
        finish(helper, children, sel)


def _kill(child: Child) -> None:
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def finish(child: Child, children: dict, sel, timed_out: bool = False) -> None:
    if children.get(child.fd) is not child:
        return  # finished already
    end_helper(child, children, sel)
    try:
        sel.unregister(child.fd)
    except (KeyError, ValueError):
        pass
    child.buf += read_all(child.fd)
    os.close(child.fd)
    children.pop(child.fd, None)
    _kill(child)  # and whatever it started and left behind in its group (before the reap: no pid reuse)
    _, status = os.waitpid(child.pid, 0)
    timing.mark(f"worker: {'helper' if child.requester else 'probe'} ended")
    reaper.kill_strays({c.pid for c in children.values()})  # and what left the group (setsid)
    sandbox.discard(child.pid)
    if child.requester is not None:
        if child.requester.helper is child:
            child.requester.helper = None
            kids.relay(child.requester, child.options["helper"]["seq"], kids.answer_of(child), sel)
        return
    while QUEUE and kids.probes(children) < MAX_CHILDREN:
        spawn(QUEUE.pop(0), children, sel)
    payload = answers.checked(next((m for m in json_lines(child.buf) if "result" in m or "error" in m), None))
    if child.failure:
        payload = {"error": child.failure, "at": None}
    elif payload and "result" in payload:
        payload["result"]["stats"]["helper_probes"] = child.helpers  # re-probes and second assumptions
    if child.cancelled:
        send({"id": child.id, "ok": False, "cancelled": True, "error": "cancelled"})
    elif payload and "result" in payload:
        send({"id": child.id, "ok": True, "result": payload["result"]})
    elif payload and "error" in payload:
        send({"id": child.id, "ok": False, "error": payload["error"], "trace": payload.get("trace"),
              "at": payload.get("at")})
    else:
        if timed_out:
            why = "timeout"
        elif os.WIFSIGNALED(status):
            why = f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
        else:
            why = f"exited with status {os.WEXITSTATUS(status)}"
        send({"id": child.id, "ok": False, "crashed": why, "error": f"the probe process {why}",
              "at": answers.dumped_location(child.buf, child.files)})


if __name__ == "__main__":
    code = main()
    # Skip the interpreter's teardown of torch (a second or more): nothing is left to flush.
    sys.stderr.flush()
    os._exit(code)

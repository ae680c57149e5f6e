# agentbayfs bootstrap for Python: waits for one script on fd 4, runs it as
# __main__, and reports how it ended on fd 3 as JSON lines, so errors come
# from the interpreter itself rather than from scraping stderr.
# Usage: python3 -I -u -c <this>; then fd 4 gets the length of the script's
# name in decimal and a newline, the name, and the script's bytes up to end
# of file. The interpreter starts (and imports what this needs) before the
# script exists: a warm sandbox is one waiting here, started with the
# argument "warm", and it imports ahead what reporting an error needs. A cold
# one imports that only if there is an error to report: it costs more than
# the interpreter's own start.
import sys, os
import builtins

if sys.argv[1:] == ["warm"]:
    import json, traceback
    # Ready: the daemon hands scripts only to spares that said so.
    try:
        os.write(3, b'{"event": "ready"}\n')
    except OSError:
        pass


def _agentbayfs_receive():
    chunks = []
    while True:
        try:
            b = os.read(4, 1 << 20)
        except InterruptedError:
            continue
        if not b:
            break
        chunks.append(b)
    os.close(4)
    data = b"".join(chunks)
    head, _, rest = data.partition(b"\n")
    # Nothing came (the daemon is stopping this sandbox): nothing to run.
    if not head:
        os._exit(0)
    n = int(head)
    name, source = rest[:n], rest[n:]
    # The script sits in the working directory: tracebacks show its own name.
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(source)
    return os.fsdecode(name), source


def _agentbayfs_run():
    try:
        rep = os.fdopen(3, "w", encoding="utf-8", errors="replace")
        os.set_inheritable(3, False)
    except OSError:
        rep = None

    def send(**event):
        if rep is None:
            return
        try:
            import json
            rep.write(json.dumps(event) + "\n")
            rep.flush()
        except Exception:
            pass

    path, source = _agentbayfs_receive()
    if rep is not None:
        rep.write('{"event": "start"}\n')
        rep.flush()
    sys.argv = [path]
    main = type(sys)("__main__")
    main.__file__ = path
    main.__builtins__ = builtins
    main.__loader__ = None
    sys.modules["__main__"] = main

    def report(exc, tb):
        import traceback
        lines = traceback.format_exception(type(exc), exc, tb)
        text = "".join(lines)
        send(event="error", name=type(exc).__name__, value=str(exc), traceback=text)
        return text

    try:
        code = compile(source, path, "exec")
    except (SyntaxError, ValueError) as exc:
        # ValueError: "source code string cannot contain null bytes".
        sys.stderr.write(report(exc, None))
        sys.stderr.flush()
        return 1
    try:
        exec(code, main.__dict__)
    except SystemExit as exc:
        status = exc.code
        if status is None or status == 0:
            return 0
        report(exc, exc.__traceback__.tb_next if exc.__traceback__ else None)
        raise
    except BaseException as exc:
        sys.stderr.write(report(exc, exc.__traceback__.tb_next if exc.__traceback__ else None))
        sys.stderr.flush()
        return 1
    return 0


def _agentbayfs_exit(status):
    # What the interpreter's own exit does that a script can notice (wait
    # for its threads, run its atexit functions, flush its output), without
    # tearing every module down: that took longer than the whole run. Files
    # left unflushed can only be in the sandbox, which goes with the run.
    try:
        threading = sys.modules.get("threading")
        if threading is not None:
            threading._shutdown()
        import atexit
        atexit._run_exitfuncs()
    except BaseException:
        import traceback
        traceback.print_exc()
        status = status or 1
    for f in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            f.flush()
        except BaseException:
            pass
    # The exit status, then the output closed: the daemon ends the run at
    # once, without waiting for the process and the sandbox to go.
    for fd, data in ((3, b'{"event": "exit", "code": %d}\n' % status), (1, None), (2, None), (3, None)):
        try:
            if data:
                os.write(fd, data)
            else:
                os.close(fd)
        except OSError:
            pass
    os._exit(status)


_agentbayfs_exit(_agentbayfs_run())

# agentbayfs bootstrap for Python: runs one saved script as __main__ and reports
# how it ended on fd 3 as JSON lines, so errors come from the interpreter itself
# rather than from scraping stderr. Usage: python3 -I -u -c <this> /work/<script>
import sys, os


def _agentbayfs_run():
    import json, traceback, types, builtins

    try:
        rep = os.fdopen(3, "w", encoding="utf-8", errors="replace")
        os.set_inheritable(3, False)
    except OSError:
        rep = None

    def send(**event):
        if rep is None:
            return
        try:
            rep.write(json.dumps(event) + "\n")
            rep.flush()
        except Exception:
            pass

    send(event="start")
    # The script sits in the working directory: tracebacks show its own name.
    path = sys.argv[1]
    if os.path.dirname(path) == os.getcwd():
        path = os.path.basename(path)
    sys.argv = [path] + sys.argv[2:]
    main = types.ModuleType("__main__")
    main.__file__ = path
    main.__builtins__ = builtins
    main.__loader__ = None
    sys.modules["__main__"] = main

    def report(exc, tb):
        lines = traceback.format_exception(type(exc), exc, tb)
        text = "".join(lines)
        send(event="error", name=type(exc).__name__, value=str(exc), traceback=text)
        return text

    try:
        with open(path, "rb") as f:
            source = f.read()
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


sys.exit(_agentbayfs_run())

# agentbayfs bootstrap for Python: waits for one script on fd 4, runs it as
# __main__, and reports how it ended on fd 3 as JSON lines, so errors come
# from the interpreter itself rather than from scraping stderr.
# Usage: python3 -I -u -c <this>; then fd 4 gets the length of the script's
# name in decimal and a newline, the name, and the script's bytes up to end
# of file. The interpreter starts (and imports what this needs) before the
# script exists: a warm sandbox is one waiting here, started with the
# argument "warm", and it imports ahead what reporting an error needs, and
# _ast (what the first compile() sets up, 1 ms). A cold one imports that
# only if there is an error to report: it costs more than the interpreter's
# own start.
#
# Rich results, as a notebook shows them, go on fd 3 as well, one JSON line
# each: {"event": "result", "main": true|false, "data": {MIME: text, ...}}
# (binary forms such as image/png in base64, application/json as JSON text).
# When the run ends (also by an exception or sys.exit), first every open
# matplotlib figure, in figure-number order, as image/png and text/plain;
# then the main result: the value of the script's last statement when that
# is an expression and the value is not None, as repr() in text/plain plus
# what its _repr_html_, _repr_markdown_, _repr_svg_, _repr_png_, _repr_jpeg_,
# _repr_latex_ and _repr_json_ give.
import sys, os
import builtins

if sys.argv[1:] in (["warm"], ["zygote"]):
    import json, traceback, _ast
if sys.argv[1:] == ["warm"]:
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


# compile()'s flag for a syntax tree (ast.PyCF_ONLY_AST): "import ast" costs
# 3 ms, a sixth of the interpreter's start.
_AGENTBAYFS_ONLY_AST = 0x400


def _agentbayfs_compile(source, path):
    """The script's code, and apart the code of its last statement when that
    is an expression, whose value is the main result (else None). Errors are
    compile()'s own: a source that does not split is compiled as it is,
    which raises them as they always were."""
    try:
        split = _agentbayfs_split_text(source, path)
    except Exception:
        split = None
    if split is None:
        try:
            split = _agentbayfs_split_tree(source, path)
        except Exception:
            split = False
    return split or (compile(source, path, "exec"), None)


def _agentbayfs_split_tree(source, path):
    # The whole tree of the script: exact, but that takes as long again as
    # compiling the source, so only when _agentbayfs_split_text() cannot tell.
    import _ast
    tree = compile(source, path, "exec", _AGENTBAYFS_ONLY_AST)
    body = tree.body
    last = body[-1] if body else None
    if not isinstance(last, _ast.Expr):
        return False
    # A lone string is the module's docstring, not a value.
    if len(body) == 1 and isinstance(last.value, _ast.Constant) and isinstance(last.value.value, str):
        return False
    body.pop()
    return compile(tree, path, "exec"), compile(_ast.Expression(last.value), path, "eval")


def _agentbayfs_split_text(source, path):
    # The last statement starts on a line of its own at column 0: tries the
    # last few such lines, parsing only from there on (with as many newlines
    # before it as the script has, for its line numbers). If that is one
    # expression and what comes before compiles on its own, it is the last
    # statement: a cut inside a string, a bracket or a continued line would
    # leave the part before unfinished. False: the last statement is not an
    # expression; None: cannot tell (the tree decides).
    import _ast
    i = source.find(b"\n")
    j = source.find(b"\n", i + 1) if i >= 0 else -1
    lead = source[:j] if j >= 0 else source
    if source.startswith(b"\xef\xbb\xbf") or b"coding" in lead:
        return None   # maybe not UTF-8: the tree reads its declaration
    text = source.decode("utf-8")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    start, tries = len(text), 16
    while start > 0 and tries > 0:
        start = text.rfind("\n", 0, start - 1) + 1
        if text[start:start + 1] in ("", " ", "\t", "\f", "\n", "#"):
            continue
        tries -= 1
        lines = text.count("\n", 0, start)
        try:
            tail = compile("\n" * lines + text[start:], path, "exec", _AGENTBAYFS_ONLY_AST)
        except SyntaxError:
            continue
        if len(tail.body) != 1:
            return None
        last = tail.body[0]
        if not isinstance(last, _ast.Expr):
            return False
        if isinstance(last.value, _ast.Constant) and isinstance(last.value.value, str):
            return None   # maybe the docstring
        try:
            head = compile(text[:start], path, "exec")
        except SyntaxError:
            return None
        return head, compile(_ast.Expression(last.value), path, "eval")
    return None


def _agentbayfs_to_base64(data):
    import binascii
    if isinstance(data, str):
        data = binascii.a2b_base64(data)
    if not isinstance(data, (bytes, bytearray)):
        raise TypeError("not bytes")
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def _agentbayfs_to_json(data):
    import json
    if isinstance(data, str):
        json.loads(data)
        return data
    return json.dumps(data, allow_nan=False)


def _agentbayfs_text(data):
    if not isinstance(data, str):
        raise TypeError("not text")
    return data


# The IPython display methods: name, MIME type, what makes the text of it.
_AGENTBAYFS_FORMS = (
    ("_repr_html_", "text/html", _agentbayfs_text),
    ("_repr_markdown_", "text/markdown", _agentbayfs_text),
    ("_repr_svg_", "image/svg+xml", _agentbayfs_text),
    ("_repr_png_", "image/png", _agentbayfs_to_base64),
    ("_repr_jpeg_", "image/jpeg", _agentbayfs_to_base64),
    ("_repr_latex_", "text/latex", _agentbayfs_text),
    ("_repr_json_", "application/json", _agentbayfs_to_json),
)


def _agentbayfs_bundle(value):
    """VALUE's forms as a MIME bundle, or None when even repr() fails. A
    form whose method fails, or gives nothing usable, is left out."""
    try:
        text = repr(value)
    except BaseException:
        return None
    data = {"text/plain": text}
    if isinstance(value, type):
        return data   # its _repr_*_ are methods of its instances
    for name, mime, make in _AGENTBAYFS_FORMS:
        try:
            method = getattr(value, name, None)
            if method is None or not callable(method):
                continue
            out = method()
            if isinstance(out, tuple) and len(out) == 2:
                out = out[0]   # (data, metadata)
            if out is not None:
                data[mime] = make(out)
        except BaseException:
            pass
    return data


def _agentbayfs_result_line(main, data):
    """The report line of one result, as json.dumps() would write it, without
    importing json, which costs more than the whole of a small run (5 ms,
    with re); DATA maps MIME types to text."""
    try:
        from _json import encode_basestring_ascii as enc
    except ImportError:
        from json.encoder import py_encode_basestring_ascii as enc
    return '{"event": "result", "main": %s, "data": {%s}}\n' % (
        "true" if main else "false", ", ".join(enc(k) + ": " + enc(v) for k, v in data.items()))


def _agentbayfs_figures():
    """Every open matplotlib figure as a MIME bundle, when the script used
    pyplot (never imported here otherwise). One that cannot be drawn is
    left out."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return []
    try:
        nums = list(plt.get_fignums())
    except BaseException:
        return []
    import io
    bundles = []
    for num in nums:
        try:
            fig = plt.figure(num)
            buf = io.BytesIO()
            fig.savefig(buf, format="png")
            bundles.append({"text/plain": repr(fig), "image/png": _agentbayfs_to_base64(buf.getvalue())})
        except BaseException:
            pass
    return bundles


def _agentbayfs_run():
    try:
        # closefd=False: fd 3 must outlive this function, for the exit
        # event that _agentbayfs_exit() writes after it returned.
        rep = os.fdopen(3, "w", encoding="utf-8", errors="replace", closefd=False)
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

    def send_result(main, data):
        if rep is None:
            return
        try:
            rep.write(_agentbayfs_result_line(main, data))
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

    def results(value=None):
        for data in _agentbayfs_figures():
            send_result(False, data)
        data = _agentbayfs_bundle(value) if value is not None else None
        if data is not None:
            send_result(True, data)

    try:
        code, last = _agentbayfs_compile(source, path)
    except (SyntaxError, ValueError) as exc:
        # ValueError: "source code string cannot contain null bytes".
        sys.stderr.write(report(exc, None))
        sys.stderr.flush()
        return 1
    try:
        exec(code, main.__dict__)
        value = eval(last, main.__dict__) if last is not None else None
    except SystemExit as exc:
        results()
        status = exc.code
        if status is None or status == 0:
            return 0
        report(exc, exc.__traceback__.tb_next if exc.__traceback__ else None)
        raise
    except BaseException as exc:
        sys.stderr.write(report(exc, exc.__traceback__.tb_next if exc.__traceback__ else None))
        sys.stderr.flush()
        results()
        return 1
    results(value)
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


def _agentbayfs_zygote():
    """The fork server (-o forkserver=on): this interpreter, up in a sandbox
    that may still make namespaces and mounts (CAP_SYS_ADMIN, CAP_NET_ADMIN
    and CAP_SETPCAP in its own user namespace, no seccomp filter), never
    runs a script itself. For each request on fd 8 (a SOCK_SEQPACKET
    socket: the text "CPU NPROC SIZE" with six descriptors: the run's stdin,
    stdout, stderr, report and script pipes, and a socket to answer on) a
    run is forked:
      A: new mount, PID, network and IPC namespaces; waits for B and exits
         with its status (128 + signal for a signal, as bubblewrap does);
      B: PID 1 of the run: a fresh tmpfs on /tmp, /work and /dev/shm, a new
         /proc (with /proc/1 hidden and the kernel's knobs read-only) and
         /dev/pts, loopback up, then not dumpable and without capabilities;
         reaps, and exits when C does;
      C: the run: process limit, every capability dropped, no new
         privileges, the seccomp filter (read once from fd 6), CPU limit,
         then the script, as a cold bootstrap runs it.
    After the first request the next run is set up ahead: A, B and C as
    above, C waiting on its fd 5 for the five descriptors and the CPU limit
    of the request that takes it. Each run thus gets a fresh copy of an
    interpreter that never ran a script, in namespaces and file systems of
    its own, all gone when it ends. The daemon's end of the answer socket
    closing (the run was cancelled or timed out) kills A, and with it the
    run. When fd 8 ends, every run is killed and this process exits. Only
    the daemon writes to fd 8; a request it cannot use is dropped."""
    import ctypes, fcntl, resource, select, selectors, signal, socket, struct

    libc = ctypes.CDLL(None, use_errno=True)
    PDEATHSIG, DUMPABLE, CAPBSET_DROP, SECCOMP, NO_NEW_PRIVS, CAP_AMBIENT = 1, 4, 24, 22, 38, 47
    NEWNS, NEWIPC, NEWPID, NEWNET = 0x20000, 0x8000000, 0x20000000, 0x40000000
    RDONLY, NOSUID, NODEV, NOEXEC, REMOUNT, BIND, REC, PRIVATE = 1, 2, 4, 8, 32, 4096, 0x4000, 1 << 18

    class _Fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    def check(rc, what):
        if rc != 0:
            e = ctypes.get_errno()
            raise OSError(e, "%s: %s" % (what, os.strerror(e)))

    def mount(src, target, fstype, flags, data):
        check(libc.mount(src, target, fstype, ctypes.c_ulong(flags), data), "mount " + target.decode())

    def drop_caps():
        for cap in range(64):
            if libc.prctl(CAPBSET_DROP, cap, 0, 0, 0) != 0:
                break
        libc.prctl(CAP_AMBIENT, 4, 0, 0, 0)      # PR_CAP_AMBIENT_CLEAR_ALL
        head = (ctypes.c_uint32 * 2)(0x20080522, 0)   # _LINUX_CAPABILITY_VERSION_3
        data = (ctypes.c_uint32 * 6)()
        check(libc.capset(head, data), "capset")

    try:
        filt = b""
        while True:
            b = os.read(6, 65536)
            if not b:
                break
            filt += b
        os.close(6)
    except OSError:
        filt = None
    fbuf = ctypes.create_string_buffer(filt, len(filt)) if filt else None
    prog = _Fprog(len(filt) // 8, ctypes.addressof(fbuf)) if filt else None
    me = os.getpid()
    sock = socket.socket(fileno=8)
    sel = selectors.DefaultSelector()
    sel.register(sock, selectors.EVENT_READ, None)

    def run_c(cpu, nproc, ahead):
        os.setsid()
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        drop_caps()
        check(libc.prctl(DUMPABLE, 1, 0, 0, 0), "prctl")
        check(libc.prctl(NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
        if prog is not None:
            check(libc.prctl(SECCOMP, 2, ctypes.byref(prog), 0, 0), "seccomp")
        os.chdir("/work")
        if ahead:
            # Set up ahead: the run's descriptors and time come on fd 5.
            with socket.socket(fileno=5) as w:
                msg, fds, _, _ = socket.recv_fds(w, 256, 6)
            if len(fds) != 5:
                os._exit(0)   # the server is ending: no run came
            for i, fd in enumerate(fds):
                os.dup2(fd, i)
                if fd > 4:
                    os.close(fd)
            cpu = int(msg)
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))

    def run_b(alive, cpu, nproc, size, ahead):
        check(libc.prctl(PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl")
        if select.select([alive], [], [], 0)[0]:
            os._exit(127)   # A is gone already
        os.close(alive)
        opts = b"mode=0755,size=%d" % size
        mount(b"tmpfs", b"/tmp", b"tmpfs", NOSUID | NODEV, opts)
        mount(b"tmpfs", b"/work", b"tmpfs", NOSUID | NODEV, opts)
        mount(b"tmpfs", b"/dev/shm", b"tmpfs", NOSUID | NODEV, b"mode=1777,size=%d" % size)
        mount(b"devpts", b"/dev/pts", b"devpts", NOSUID | NOEXEC, b"newinstance,ptmxmode=0666,mode=620")
        mount(b"proc", b"/proc", b"proc", NOSUID | NODEV | NOEXEC, None)
        # As bubblewrap leaves them: the kernel's knobs read-only.
        for sub in (b"/proc/sys", b"/proc/sysrq-trigger", b"/proc/irq", b"/proc/bus"):
            if os.path.exists(sub):
                mount(sub, sub, None, BIND | REC, None)
                mount(None, sub, None, BIND | REMOUNT | RDONLY | NOSUID | NODEV | NOEXEC, None)
        # PID 1 (this process) hidden, as bubblewrap's own init is.
        mount(b"tmpfs", b"/proc/1", b"tmpfs", RDONLY | NOSUID | NODEV | NOEXEC, b"size=4k")
        # Its own loopback, up (SIOCGIFFLAGS, SIOCSIFFLAGS; IFF_UP).
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            req = bytearray(struct.pack("16sH", b"lo", 0).ljust(40, b"\0"))
            fcntl.ioctl(s, 0x8913, req)
            flags = struct.unpack_from("H", req, 16)[0]
            struct.pack_into("H", req, 16, flags | 1)
            fcntl.ioctl(s, 0x8914, req)
        c = os.fork()
        if c == 0:
            run_c(cpu, nproc, ahead)
            return
        # PID 1 takes no signal it has no handler for: none from the run.
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.closerange(0, 6)
        check(libc.prctl(DUMPABLE, 0, 0, 0, 0), "prctl")
        drop_caps()
        while True:
            try:
                pid, st = os.waitpid(-1, 0)
            except ChildProcessError:
                os._exit(127)
            if pid == c:
                code = os.waitstatus_to_exitcode(st)
                os._exit(code if code >= 0 else 128 - code)

    def run_a(fds, cpu, nproc, size, wait):
        """The run's A; returns in its C. FDS: the run's five descriptors,
        or None for a run set up ahead, whose C waits for them on WAIT."""
        # No object here may close a descriptor later that the script's
        # own may have become by then.
        sel.close()
        sock.close()
        for r in prepared:
            r["psock"].detach()
        if fds is None:
            null = os.open(os.devnull, os.O_RDWR)
            fds = [null] * 5
        for i, fd in enumerate(fds[:5]):
            os.dup2(fd, i)
        if wait is not None:
            os.dup2(wait.detach(), 5)
        os.closerange(5 if wait is None else 6, 1 << 20)
        check(libc.prctl(PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl")
        if os.getppid() != me:
            os._exit(127)
        check(libc.unshare(NEWNS | NEWPID | NEWNET | NEWIPC), "unshare")
        mount(None, b"/", None, REC | PRIVATE, None)
        alive, hold = os.pipe()
        b = os.fork()
        if b == 0:
            os.close(hold)
            run_b(alive, cpu, nproc, size, wait is not None)
            return
        os.closerange(0, hold)
        _, st = os.waitpid(b, 0)
        code = os.waitstatus_to_exitcode(st)
        os._exit(code if code >= 0 else 128 - code)

    def watch(pid, conn, **more):
        run = dict(pid=pid, conn=conn, pidfd=os.pidfd_open(pid), **more)
        sel.register(run["pidfd"], selectors.EVENT_READ, ("exit", run))
        if conn is not None:
            sel.register(conn, selectors.EVENT_READ, ("conn", run))
        return run

    def start(msg, fds):
        """Forks the run of one request; returns True in the run's C."""
        try:
            cpu, nproc, size = (int(x) for x in msg.split())
        except ValueError:
            cpu = None
        if cpu is None or len(fds) != 6:
            for fd in fds:
                os.close(fd)
            return False
        setup[:] = [nproc, size]
        # One set up ahead takes it if there is one.
        while prepared:
            run = prepared.pop(0)
            if (run["nproc"], run["size"]) == (nproc, size):
                try:
                    socket.send_fds(run["psock"], [b"%d" % cpu], fds[:5])
                except OSError:
                    pass
                else:
                    run["psock"].close()
                    for fd in fds[:5]:
                        os.close(fd)
                    run["conn"] = fds[5]
                    sel.register(run["conn"], selectors.EVENT_READ, ("conn", run))
                    return False
            run["psock"].close()
            signal.pidfd_send_signal(run["pidfd"], signal.SIGKILL)
        try:
            pid = os.fork()
        except OSError as e:
            # No process to spare: the run says so, as a cold one would.
            try:
                os.write(fds[3], b'{"event": "spawn_error", "stage": 1, "errno": %d}\n' % (e.errno or 5))
            except OSError:
                pass
            for fd in fds:
                os.close(fd)
            return False
        if pid == 0:
            try:
                run_a(fds, cpu, nproc, size, None)
                return True
            except BaseException as e:
                err = getattr(e, "errno", None) or 5
                try:
                    os.write(3, b'{"event": "spawn_error", "stage": 1, "errno": %d}\n' % err)
                    os.write(2, ("agentbayfs: the run could not be set up: %s\n" % e).encode())
                finally:
                    os._exit(127)
        for fd in fds[:5]:
            os.close(fd)
        watch(pid, fds[5])
        return False

    def prepare():
        """Sets the next run up ahead (its namespaces, file systems and
        limits), its C waiting for the run. True in that C, once it came."""
        nproc, size = setup
        psock, wait = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            pid = os.fork()
        except OSError:
            psock.close()
            wait.close()
            return False
        if pid == 0:
            try:
                psock.close()
                run_a(None, 0, nproc, size, wait)
                return True
            except BaseException:
                os._exit(127)
        wait.close()
        prepared.append(watch(pid, None, psock=psock, nproc=nproc, size=size))
        return False

    prepared = []        # runs set up ahead, oldest first
    setup = []           # the limits of the last request: [nproc, size]
    failures = 0         # runs set up ahead that died unused, in a row
    while True:
        for key, _ in sel.select():
            if key.data is None:
                try:
                    msg, fds, _, _ = socket.recv_fds(sock, 256, 8)
                except InterruptedError:
                    continue
                except OSError:
                    msg, fds = b"", []
                if not msg and not fds:
                    for key2 in list(sel.get_map().values()):
                        if key2.data is not None and key2.data[0] == "exit":
                            try:
                                os.kill(key2.data[1]["pid"], signal.SIGKILL)
                            except OSError:
                                pass
                    os._exit(0)
                if start(msg, fds):
                    return
                continue
            kind, run = key.data
            # An event of this batch may be stale: handled with another.
            if run["conn" if kind == "conn" else "pidfd"] is None:
                continue
            if kind == "conn":
                # The daemon let go of the run: it is to end now.
                sel.unregister(run["conn"])
                os.close(run["conn"])
                run["conn"] = None
                signal.pidfd_send_signal(run["pidfd"], signal.SIGKILL)
                continue
            sel.unregister(run["pidfd"])
            _, st = os.waitpid(run["pid"], 0)
            os.close(run["pidfd"])
            run["pidfd"] = None
            if any(r is run for r in prepared):
                # Died before a run came: after a few, none ahead.
                prepared[:] = [r for r in prepared if r is not run]
                run["psock"].close()
                failures += 1
                continue
            if "psock" in run:
                failures = 0
            code = os.waitstatus_to_exitcode(st)
            code = code if code >= 0 else 128 - code
            if run["conn"] is not None:
                try:
                    os.write(run["conn"], bytes([code & 0xff]))
                except OSError:
                    pass
                sel.unregister(run["conn"])
                os.close(run["conn"])
                run["conn"] = None
        # The next run set up ahead, once the limits are known.
        if setup and not prepared and failures < 3 and prepare():
            return

if sys.argv[1:] == ["zygote"]:
    _agentbayfs_zygote()
_agentbayfs_exit(_agentbayfs_run())

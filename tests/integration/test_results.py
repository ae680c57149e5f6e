"""The virtual result files: content, streaming, blocking, errors, permissions."""

import errno
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from conftest import ALL_STATES, FINAL_STATES, call_with_timeout

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
STATUS_KEYS = {"script", "language", "backend", "run", "state", "exit_code", "signal",
               "started_at", "finished_at", "duration_ms", "stdout_bytes", "stderr_bytes",
               "truncated", "error"}


def is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def check_status_shape(st):
    """Types of every documented status key."""
    missing = STATUS_KEYS - set(st)
    assert not missing, "status lacks %s: %s" % (sorted(missing), st)
    assert isinstance(st["script"], str) and st["script"]
    assert st["language"] in ("python", "javascript")
    assert st["backend"] == "local"
    assert is_int(st["run"]) and st["run"] >= 1
    assert st["state"] in ALL_STATES, st
    for k in ("exit_code", "signal"):
        assert st[k] is None or is_int(st[k]), (k, st)
    for k in ("started_at", "finished_at"):
        assert st[k] is None or (isinstance(st[k], str) and RFC3339.match(st[k])), (k, st)
    for k in ("duration_ms", "stdout_bytes", "stderr_bytes"):
        assert st[k] is None or (is_int(st[k]) and st[k] >= 0), (k, st)
    if st["state"] in FINAL_STATES - {"interrupted"}:
        for k in ("duration_ms", "stdout_bytes", "stderr_bytes"):
            assert is_int(st[k]), (k, st)
    assert isinstance(st["truncated"], bool)
    err = st["error"]
    assert err is None or (isinstance(err, dict) and isinstance(err.get("name"), str)
                           and isinstance(err.get("value"), str)), st
    if st["state"] in FINAL_STATES and st["state"] != "interrupted":
        assert st["finished_at"] is not None, st
    if st["state"] == "succeeded":
        assert st["error"] is None and st["exit_code"] == 0, st


def first_line(text):
    return text.split("\n", 1)[0]


# ----------------------------------------------------------------------------
# Results belong to the newest save
# ----------------------------------------------------------------------------

@pytest.mark.deadline(90)
def test_cp_then_cat_shows_new_output(fs, tmp_path):
    """`cp a.py m/ && cat m/a.out` always shows the output of the script just copied (20 times)."""
    src = tmp_path / "a.py"
    for i in range(20):
        src.write_text("import sys\nprint('iteration %d')\nprint('e%d', file=sys.stderr)\n" % (i, i))
        r = subprocess.run(["sh", "-c", 'cp "$1" "$2/a.py" && cat "$2/a.out" && cat "$2/a.err"'
                            ' && cat "$2/a.error"', "sh", str(src), fs.mnt],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=20)
        assert r.returncode == 0, r.stderr
        assert r.stdout == "iteration %d\ne%d\n" % (i, i), "round %d: %r" % (i, r.stdout)
    st = fs.wait_run("a", 20)
    assert st["run"] == 20 and st["state"] == "succeeded", st


def test_status_shows_new_run_immediately(fs):
    """Right after the writer's close returns, .status already has the new run number."""
    fs.save_and_wait("a.py", "print(1)\n")
    for run in (2, 3):
        fs.write("a.py", "import time\ntime.sleep(0.3)\nprint(%d)\n" % run)
        st = fs.status("a")
        assert st["run"] == run, st
        check_status_shape(st)
        assert st["state"] in ALL_STATES
        fs.wait_run("a", run)
        assert fs.read("a.out") == "%d\n" % run


def test_out_waits_for_pending_run(fs):
    """Opening .out right after a save waits for the new run instead of showing the old one."""
    fs.save_and_wait("a.py", "print('old')\n")
    fs.write("a.py", "import time\ntime.sleep(0.5)\nprint('new')\n")
    assert fs.read("a.out") == "new\n"
    assert fs.read("a.error") == ""


# ----------------------------------------------------------------------------
# Streaming
# ----------------------------------------------------------------------------

def test_streaming_reader_sees_first_line_early(fs):
    """A reader of .out gets the first line long before the run ends, then EOF at the end."""
    fs.write("s.py", "import time\nprint('first', flush=True)\ntime.sleep(1.5)\nprint('second')\n")
    chunks = []  # (time, bytes)
    done = threading.Event()

    def reader():
        fd = os.open(fs.path("s.out"), os.O_RDONLY)
        try:
            while True:
                b = os.read(fd, 4096)
                chunks.append((time.monotonic(), b))
                if not b:
                    break
        finally:
            os.close(fd)
            done.set()

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    deadline = time.monotonic() + 15
    while not any(c[1] for c in chunks):
        assert time.monotonic() < deadline and not done.is_set(), "no output: %r" % chunks
        time.sleep(0.02)
    # Mid-run: the file's size already counts the first line, and grows later.
    size_mid = os.stat(fs.path("s.out")).st_size
    st_mid = fs.status("s")
    assert done.wait(15), "reader did not reach EOF"
    data = b"".join(c[1] for c in chunks)
    assert data == b"first\nsecond\n"
    t_first = next(tm for tm, b in chunks if b)
    t_end = chunks[-1][0]
    assert t_end - t_first >= 1.0, "first line came only %.2f s before the end" % (t_end - t_first)
    assert st_mid["state"] == "running", st_mid
    assert 6 <= size_mid < 13, size_mid
    st = fs.wait_run("s", 1)
    assert os.stat(fs.path("s.out")).st_size == 13
    assert st["stdout_bytes"] == 13


def test_streaming_js(fs):
    """Node output streams too: first line arrives while the script still sleeps."""
    fs.write("s.js", "console.log('js first');\nsetTimeout(() => console.log('js second'), 1500);\n")
    got = []

    def reader():
        with open(fs.path("s.out"), "rb", buffering=0) as f:
            while True:
                b = f.read(4096)
                got.append((time.monotonic(), b))
                if not b:
                    return

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    t.join(20)
    assert not t.is_alive()
    assert b"".join(b for _, b in got) == b"js first\njs second\n"
    t_first = next(tm for tm, b in got if b)
    assert got[-1][0] - t_first >= 1.0


def test_nonblocking_read_returns_eagain(fs):
    """O_NONBLOCK read of a caught-up .out during a run fails with EAGAIN at once."""
    fs.write("nb.py", "import time\nprint('x', flush=True)\ntime.sleep(2)\nprint('y')\n")
    fs.wait_for_status("nb", lambda s: s["state"] == "running" and s["stdout_bytes"] >= 2,
                       timeout=15, what="running with output")

    def nb_reads():
        fd = os.open(fs.path("nb.out"), os.O_RDONLY | os.O_NONBLOCK)
        try:
            got = b""
            while len(got) < 2:
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise AssertionError("EOF on nb.out during the run after %r" % got)
                got += chunk
            t0 = time.monotonic()
            try:
                more = os.read(fd, 4096)
            except BlockingIOError as e:
                return got, e.errno, time.monotonic() - t0
            return got, more, time.monotonic() - t0
        finally:
            os.close(fd)

    got, res, took = call_with_timeout(nb_reads, 5, "non-blocking read of nb.out")
    assert got == b"x\n"
    assert res == errno.EAGAIN, "expected EAGAIN, read returned %r" % (res,)
    assert took < 0.5
    fs.wait_run("nb", 1)
    assert fs.read("nb.out") == "x\ny\n"


def test_poll_wakes_when_output_comes(fs):
    """poll(2) on a caught-up .out (O_NONBLOCK, as event loops use it) says
    nothing while the run prints nothing, wakes when output comes, and
    reports it readable at the end (read gives end-of-file); .error polls
    readable only once the run has ended. No busy loop: each poll either
    waits or has something to read."""
    fs.write("pl.py", "import time\nprint('a', flush=True)\ntime.sleep(1.5)\n"
                      "print('b', flush=True)\ntime.sleep(1.5)\n")
    fs.wait_for_status("pl", lambda s: s["state"] == "running" and s["stdout_bytes"] >= 2,
                       timeout=15, what="running with output")

    def follow():
        import select
        fd = os.open(fs.path("pl.out"), os.O_RDONLY | os.O_NONBLOCK)
        efd = os.open(fs.path("pl.error"), os.O_RDONLY | os.O_NONBLOCK)
        events = []
        try:
            p = select.poll()
            p.register(fd, select.POLLIN)
            e = select.poll()
            e.register(efd, select.POLLIN)
            assert e.poll(0) == [], ".error was readable during the run"
            got = b""
            t0 = time.monotonic()
            for _ in range(50):
                ready = p.poll(10000)
                when = time.monotonic() - t0
                if not ready:
                    raise AssertionError("poll gave nothing in 10 s after %r" % got)
                try:
                    chunk = os.read(fd, 4096)
                except BlockingIOError:
                    raise AssertionError("poll said readable but read gave EAGAIN after %r" % got)
                events.append((round(when, 2), chunk))
                if not chunk:
                    break
                got += chunk
            assert e.poll(2000) != [], ".error was not readable after the run"
            return got, events
        finally:
            os.close(fd)
            os.close(efd)

    got, events = call_with_timeout(follow, 30, "poll on pl.out")
    assert got == b"a\nb\n", events
    assert events[-1][1] == b"", events
    # a, then b about 1.5 s later, then end-of-file: a handful of wake-ups.
    assert len(events) <= 6, events
    t_b = next(t for t, c in events if b"b" in c)
    assert t_b >= 1.0, events


def test_status_valid_while_running(fs):
    """During a run .status is complete, valid JSON with state running; afterwards it is final."""
    fs.write("r.py", "import time\nprint('go', flush=True)\ntime.sleep(1)\n")
    st = fs.wait_state("r", "running", timeout=15)
    check_status_shape(st)
    assert st["script"] == "r.py" and st["language"] == "python" and st["run"] == 1
    assert st["started_at"] is not None and st["finished_at"] is None, st
    assert st["exit_code"] is None and st["error"] is None, st
    # Many reads during the run: always valid JSON (try_status asserts that).
    for _ in range(20):
        check_status_shape(fs.status("r"))
    st = fs.wait_run("r", 1)
    check_status_shape(st)
    assert st["state"] == "succeeded"
    assert st["exit_code"] == 0 and st["signal"] is None and st["error"] is None
    assert st["finished_at"] is not None and st["duration_ms"] >= 900, st
    assert st["stdout_bytes"] == 3 and st["stderr_bytes"] == 0 and st["truncated"] is False


# ----------------------------------------------------------------------------
# How runs end
# ----------------------------------------------------------------------------

def test_success(fs):
    """A clean run: state succeeded, exit_code 0, empty .error and .err."""
    st = fs.save_and_wait("ok.py", "print('fine')\n")
    check_status_shape(st)
    assert st["state"] == "succeeded" and st["exit_code"] == 0 and st["error"] is None
    assert fs.read("ok.error") == ""
    assert fs.read("ok.err") == ""
    assert fs.read("ok.out") == "fine\n"
    assert os.stat(fs.path("ok.error")).st_size == 0


def test_stderr_goes_to_err(fs):
    """stderr lands in .err and stdout in .out, each counted in the status."""
    st = fs.save_and_wait("e.py", "import sys\nprint('to-out')\nprint('to-err', file=sys.stderr)\n")
    assert fs.read("e.out") == "to-out\n"
    assert fs.read("e.err") == "to-err\n"
    assert st["stdout_bytes"] == 7 and st["stderr_bytes"] == 7, st
    st = fs.save_and_wait("j.js", "console.error('js-err');\nconsole.log('js-out');\n")
    assert fs.read("j.err") == "js-err\n"
    assert fs.read("j.out") == "js-out\n"


def test_python_uncaught_exception(fs):
    """Uncaught ZeroDivisionError: state failed, error object, .error has name, value and traceback."""
    fs.allow_log("ZeroDivisionError")
    st = fs.save_and_wait("z.py", "def f():\n    return 1 / 0\nf()\n")
    check_status_shape(st)
    assert st["state"] == "failed", st
    assert (st["error"]["name"], st["error"]["value"]) == ("ZeroDivisionError", "division by zero"), st
    text = fs.read("z.error")
    assert first_line(text) == "ZeroDivisionError: division by zero", text
    assert "Traceback" in text and "line 2" in text and "line 3" in text, text
    assert "Traceback" in fs.read("z.err")


def test_js_uncaught_type_error(fs):
    """Uncaught TypeError in node: state failed, .error starts 'TypeError:' then the stack."""
    fs.allow_log("TypeError")
    st = fs.save_and_wait("t.js", "function f(o) {\n  return o.foo.bar;\n}\nf({});\n")
    check_status_shape(st)
    assert st["state"] == "failed", st
    assert st["error"]["name"] == "TypeError", st
    text = fs.read("t.error")
    assert first_line(text).startswith("TypeError: "), text
    assert "bar" in first_line(text)
    assert "t.js:2" in text, text


@pytest.mark.parametrize("name,source", [
    ("bad.py", "def broken(:\n    pass\n"),
    ("bad.js", "function (\n"),
])
def test_syntax_error(fs, name, source):
    """A syntax error fails the run with a SyntaxError in .error and the status."""
    fs.allow_log("SyntaxError")
    st = fs.save_and_wait(name, source)
    check_status_shape(st)
    assert st["state"] == "failed", st
    assert st["error"]["name"] == "SyntaxError", st
    assert first_line(fs.read("bad.error")).startswith("SyntaxError:"), fs.read("bad.error")


def test_python_sys_exit(fs):
    """sys.exit(3): state failed, exit_code 3, .error starts 'SystemExit: 3'."""
    fs.allow_log("SystemExit")
    st = fs.save_and_wait("x.py", "import sys\nprint('before')\nsys.exit(3)\n")
    check_status_shape(st)
    assert st["state"] == "failed" and st["exit_code"] == 3, st
    assert st["error"]["name"] == "SystemExit", st
    assert first_line(fs.read("x.error")).startswith("SystemExit: 3"), fs.read("x.error")
    assert fs.read("x.out") == "before\n"


def test_python_sys_exit_zero_is_success(fs):
    """sys.exit(0) is a success."""
    st = fs.save_and_wait("x.py", "import sys\nsys.exit(0)\n")
    assert st["state"] == "succeeded" and st["exit_code"] == 0, st
    assert fs.read("x.error") == ""


def test_js_process_exit(fs):
    """process.exit(2): state failed, exit_code 2, .error starts 'NonZeroExit:' naming 2."""
    fs.allow_log("NonZeroExit")
    st = fs.save_and_wait("x.js", "console.log('before');\nprocess.exit(2);\n")
    check_status_shape(st)
    assert st["state"] == "failed" and st["exit_code"] == 2, st
    assert st["error"]["name"] == "NonZeroExit", st
    line = first_line(fs.read("x.error"))
    assert line.startswith("NonZeroExit:") and "2" in line, line
    assert fs.read("x.out") == "before\n"


def test_killed_by_signal(fs):
    """A script killed by a signal: state failed, signal set, .error starts 'KilledBySignal:'."""
    fs.allow_log("KilledBySignal")
    st = fs.save_and_wait("k.py", "import os, signal\nprint('x', flush=True)\n"
                                  "os.kill(os.getpid(), signal.SIGKILL)\n")
    check_status_shape(st)
    assert st["state"] == "failed", st
    assert st["signal"] == 9, st
    assert st["error"]["name"] == "KilledBySignal", st
    assert first_line(fs.read("k.error")).startswith("KilledBySignal:")


def test_time_limit(mount):
    """-o timeout=1 stops `while True: pass`: state timed_out, TimeoutError."""
    fs = mount(opts=["timeout=1"])
    fs.allow_log("TimeoutError|timed.out|time limit")
    t0 = time.monotonic()
    fs.write("loop.py", "print('spinning', flush=True)\nwhile True:\n    pass\n")
    st = fs.wait_run("loop", 1, timeout=15)
    took = time.monotonic() - t0
    check_status_shape(st)
    assert st["state"] == "timed_out", st
    assert st["error"]["name"] == "TimeoutError", st
    assert first_line(fs.read("loop.error")).startswith("TimeoutError:")
    assert fs.read("loop.out") == "spinning\n"
    assert 0.9 <= took < 8, took


def test_output_limit(mount):
    """-o max_output=1000: 100 kB of output is cut at 1000 bytes, truncated, OutputLimitExceeded."""
    fs = mount(opts=["max_output=1000"])
    fs.allow_log("OutputLimitExceeded|output limit")
    st = fs.save_and_wait("big.py", "import sys\nsys.stdout.write('x' * 100000)\n"
                                    "sys.stdout.flush()\nprint('not reached?')\n")
    check_status_shape(st)
    assert st["truncated"] is True, st
    assert st["state"] == "failed", st
    assert st["error"]["name"] == "OutputLimitExceeded", st
    assert first_line(fs.read("big.error")).startswith("OutputLimitExceeded:")
    data = fs.read_bytes("big.out")
    assert 0 < len(data) <= 1000, len(data)
    assert set(data) == {ord("x")}
    assert os.stat(fs.path("big.out")).st_size <= 1000


def test_error_waits_for_end_of_run(fs):
    """Reading .error during a run waits until the run has ended."""
    fs.allow_log("ValueError")
    fs.write("w.py", "import time\ntime.sleep(0.8)\nraise ValueError('late')\n")
    fs.wait_state("w", "running", timeout=15)
    t0 = time.monotonic()
    text = fs.read("w.error")
    assert time.monotonic() - t0 >= 0.1, "read .error did not wait for the run"
    assert first_line(text) == "ValueError: late", text
    assert fs.status("w")["state"] == "failed"


# ----------------------------------------------------------------------------
# Permissions and deletion
# ----------------------------------------------------------------------------

def test_result_files_are_read_only(fs):
    """Opening a result file for writing fails with EACCES, and content stays."""
    fs.save_and_wait("a.py", "print('keep')\n")
    for suffix in (".out", ".err", ".error", ".status"):
        p = fs.path("a" + suffix)
        for flags in (os.O_WRONLY, os.O_RDWR, os.O_WRONLY | os.O_TRUNC, os.O_WRONLY | os.O_APPEND):
            with pytest.raises(PermissionError) as ei:
                os.close(os.open(p, flags))
            assert ei.value.errno == errno.EACCES, (suffix, flags, ei.value)
        with pytest.raises(OSError):
            os.truncate(p, 0)
        assert not (os.stat(p).st_mode & 0o222), oct(os.stat(p).st_mode)
    r = subprocess.run(["sh", "-c", 'echo junk > "$1"', "sh", fs.path("a.out")],
                       stderr=subprocess.PIPE, text=True, timeout=10)
    assert r.returncode != 0
    assert fs.read("a.out") == "keep\n"
    assert fs.status("a")["run"] == 1


def test_rm_result_file(fs):
    """rm of a.out works; the other results and the script stay."""
    fs.save_and_wait("a.py", "print('gone soon')\n")
    os.unlink(fs.path("a.out"))
    listing = fs.listdir()
    assert "a.out" not in listing
    assert {"a.py", "a.err", "a.error", "a.status"} <= set(listing), listing
    assert not os.path.exists(fs.path("a.out"))
    # A new save brings it back.
    fs.save_and_wait("a.py", "print('back')\n")
    assert fs.read("a.out") == "back\n"


def test_rm_script_removes_results(fs):
    """Deleting the script makes all four result names vanish."""
    fs.save_and_wait("a.py", "print('x')\n")
    fs.save_and_wait("keep.py", "print('y')\n")
    os.unlink(fs.path("a.py"))
    listing = fs.listdir()
    for suffix in (".out", ".err", ".error", ".status"):
        assert "a" + suffix not in listing, listing
        assert not os.path.exists(fs.path("a" + suffix))
    assert listing == ["keep.err", "keep.error", "keep.out", "keep.py", "keep.status"]


def test_stat_is_instant_during_long_run(fs):
    """stat and ls -l of result files during a run return at once (< 0.5 s)."""
    fs.write("long.py", "import time\nprint('a', flush=True)\ntime.sleep(2)\n")
    fs.wait_state("long", "running", timeout=15)
    for suffix in (".out", ".err", ".error", ".status"):
        t0 = time.monotonic()
        st = call_with_timeout(lambda: os.stat(fs.path("long" + suffix)), 5, "stat")
        assert time.monotonic() - t0 < 0.5, suffix
        assert st.st_mode & 0o444
    t0 = time.monotonic()
    r = subprocess.run(["ls", "-l", fs.mnt], stdout=subprocess.PIPE, text=True, timeout=10)
    assert time.monotonic() - t0 < 0.5
    assert "long.out" in r.stdout and "long.status" in r.stdout
    t0 = time.monotonic()
    assert fs.status("long")["state"] == "running"
    assert time.monotonic() - t0 < 0.5
    fs.wait_run("long", 1)


def test_blocking_read_is_interruptible(fs):
    """`cat x.out` blocked on a running script exits promptly on SIGINT."""
    fs.write("x.py", "import time\nprint('a', flush=True)\ntime.sleep(3)\nprint('b')\n")
    fs.wait_for_status("x", lambda s: s["state"] == "running" and s["stdout_bytes"] >= 2,
                       timeout=15, what="running with output")
    cat = subprocess.Popen(["cat", fs.path("x.out")], stdout=subprocess.PIPE)
    try:
        time.sleep(0.4)
        assert cat.poll() is None, "cat ended before the run did"
        t0 = time.monotonic()
        cat.send_signal(signal.SIGINT)
        cat.wait(timeout=10)
        assert time.monotonic() - t0 < 1.0, "cat took %.2f s to die" % (time.monotonic() - t0)
        assert cat.returncode != 0
    finally:
        if cat.poll() is None:
            cat.kill()
        cat.stdout.close()
    # The daemon is still healthy and the run completes normally.
    st = fs.wait_run("x", 1)
    assert st["state"] == "succeeded", st
    assert fs.read("x.out") == "a\nb\n"


def test_blocking_read_interrupted_by_signal_handler(fs):
    """A blocked read in a process with a signal handler is interrupted (EINTR path) promptly."""
    fs.write("y.py", "import time\nprint('a', flush=True)\ntime.sleep(3)\n")
    fs.wait_for_status("y", lambda s: s["state"] == "running" and s["stdout_bytes"] >= 2,
                       timeout=15, what="running with output")
    prog = ("import os, signal, sys\n"
            "signal.signal(signal.SIGUSR1, lambda *a: (_ for _ in ()).throw(SystemExit(7)))\n"
            "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
            "os.read(fd, 100)\n"
            "print('READY', flush=True)\n"
            "os.read(fd, 100)\n"
            "sys.exit(0)\n")
    p = subprocess.Popen([sys.executable, "-c", prog, fs.path("y.out")], stdout=subprocess.PIPE,
                         text=True)
    try:
        assert p.stdout.readline() == "READY\n"
        time.sleep(0.3)
        assert p.poll() is None
        t0 = time.monotonic()
        p.send_signal(signal.SIGUSR1)
        p.wait(timeout=10)
        assert time.monotonic() - t0 < 1.0
        assert p.returncode == 7
    finally:
        if p.poll() is None:
            p.kill()
        p.stdout.close()
    fs.wait_run("y", 1)

"""The agentbay backend, end to end: the real daemon against the fake AgentBay service.

Each test starts tests/fake_agentbay.py in-process on loopback (a real HTTP
server that speaks the OpenAPI protocol and really runs the code), mounts
agentbayfs with AGENTBAY_ENDPOINT pointing at it, and drives the mount with
ordinary file operations.  The fake's counters (sessions created, released,
live; calls per action; the last requests as received) show what the daemon
did on the wire; faults and variants make the service misbehave on purpose.
"""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest

from conftest import binary_path, is_mounted, lazy_unmount

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)
import fake_agentbay  # noqa: E402

# Distinctive, so that a leak anywhere is found by a plain byte search.
KEY = "akm-itest-" + uuid.uuid4().hex + "-Zq7"
HAVE_NODE = fake_agentbay.shutil.which("node") is not None

UUID = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"
REQUEST_ID = re.compile(r"request[ _-]?id\W{0,3}" + UUID, re.IGNORECASE)
# How .error says that a run whose request reached the service may have run.
MAY_HAVE_RUN = re.compile(r"(may|might)\b.{0,30}\brun|code ran", re.IGNORECASE | re.DOTALL)


# ----------------------------------------------------------------------------
# Fixtures and helpers
# ----------------------------------------------------------------------------

@pytest.fixture
def fakes():
    """Factory: fakes(port=0, key=KEY) starts a FakeAgentBay; all are stopped at teardown."""
    started = []

    def start(port=0, key=KEY, **kw):
        f = fake_agentbay.FakeAgentBay(key, port=port, **kw)
        started.append(f)
        f.start()
        return f

    try:
        yield start
    finally:
        for f in reversed(started):
            f.stop()


@pytest.fixture
def fake(fakes):
    """One started FakeAgentBay accepting KEY (stopped after the mounts are gone)."""
    return fakes()


def ab_env(fake, key=KEY, **extra):
    env = {"AGENTBAY_ENDPOINT": fake.url}
    if key is not None:
        env["AGENTBAY_API_KEY"] = key
    env.update(extra)
    return env


def ab_mount(mount, fake, opts=(), key=KEY, env=None, args=()):
    """Mounts with -o backend=agentbay against FAKE."""
    e = ab_env(fake, key)
    e.update(env or {})
    return mount(opts=["backend=agentbay"] + list(opts), env=e, args=list(args))


def wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1f s waiting for %s" % (timeout, what))
        time.sleep(0.05)


def calls(fake, action):
    return fake.stats()["calls"].get(action, 0)


def first_line(text):
    return text.split("\n", 1)[0]


def check_error(fs, stem, name, needles=(), request_id=False, patterns=()):
    """STEM's .error starts with "NAME: " and holds NEEDLES (and a request id); returns it."""
    text = fs.read(stem + ".error")
    assert first_line(text).startswith(name + ": "), \
        "%s.error should start with %r:\n%s" % (stem, name + ": ", text)
    for n in needles:
        assert n in text, "%s.error does not mention %r:\n%s" % (stem, n, text)
    for p in patterns:
        assert re.search(p, text), "%s.error does not match %r:\n%s" % (stem, p, text)
    if request_id:
        assert REQUEST_ID.search(text), "%s.error names no request id:\n%s" % (stem, text)
    st = fs.status(stem)
    assert st["error"] and st["error"]["name"] == name, st
    assert KEY not in text
    return text


def save_ok(fs, name, code="print('fine')\n", out="fine\n"):
    """Saves NAME and checks that the run succeeded with OUT."""
    st = fs.save_and_wait(name, code)
    stem = name.rsplit(".", 1)[0]
    assert st["state"] == "succeeded", (st, fs.read(stem + ".error"))
    assert st["backend"] == "agentbay", st
    assert fs.read(stem + ".out") == out
    assert fs.read(stem + ".error") == ""
    return st


def run_cli(args, env, mnt, timeout=15):
    """Runs the daemon binary with ENV only (no AGENTBAY_* of ours); (rc, stdout+stderr)."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("AGENTBAY_")}
    e.update(env)
    proc = subprocess.Popen([binary_path()] + list(args), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace", env=e)
    try:
        out, _ = proc.communicate(timeout=timeout)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate(timeout=10)
        rc = None
    finally:
        lazy_unmount(mnt)
    return rc, out


def stop_daemon_with(fs, sig):
    fs.proc.send_signal(sig)
    rc = fs.proc.wait(timeout=15)
    fs.unmounted = True
    assert rc == 0, "exit status %s after %s; log:\n%s" % (rc, sig, fs.log_tail())
    wait_for(lambda: not is_mounted(fs.mnt), 5, "the mount to go")


# ----------------------------------------------------------------------------
# 1. Plain runs
# ----------------------------------------------------------------------------

def test_cp_and_cat_python(fake, mount, tmp_path):
    """cp of a .py then cat: stdout in .out, empty .error, status backend agentbay with main_result 42."""
    fs = ab_mount(mount, fake)
    src = tmp_path / "hello.py"
    src.write_text("import sys\nprint('hello from the cloud')\nprint('warn', file=sys.stderr)\n6 * 7\n")
    subprocess.run(["cp", str(src), fs.path("hello.py")], check=True, timeout=20)
    r = subprocess.run(["cat", fs.path("hello.out")], stdout=subprocess.PIPE, timeout=30, check=True)
    assert r.stdout == b"hello from the cloud\n"
    assert fs.read("hello.err") == "warn\n"
    assert fs.read("hello.error") == ""
    st = fs.status("hello")
    assert st["backend"] == "agentbay", st
    assert st["script"] == "hello.py" and st["language"] == "python", st
    assert st["state"] == "succeeded" and st["exit_code"] == 0 and st["error"] is None, st
    assert st["run"] == 1, st
    assert st["main_result"] == "42", st
    assert isinstance(st["results"], list) and st["results"], st
    main = [r for r in st["results"] if r.get("is_main_result")]
    assert len(main) == 1 and main[0]["text"] == "42" and "text/plain" in main[0]["types"], st
    assert st["stdout_bytes"] == len("hello from the cloud\n"), st
    s = fake.stats()
    assert s["created"] == 1 and s["calls"].get("CallMcpTool") == 1, s


RICH = """
import base64
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
class Chart:
    def _repr_png_(self):
        return PNG
    def _repr_html_(self):
        return "<b>chart</b>"
class Table:
    def __repr__(self):
        return "Table(2 rows)"
    def _repr_markdown_(self):
        return "| a |\\n|---|\\n| 1 |"
display(Chart())
print("shown")
Table()
"""


def test_rich_results_as_files(fake, mount):
    """run_code's results become files: the main result's text as
    <stem>.result, every other representation under <stem>.results/ in
    order (PNG decoded from base64); the next run without any removes
    both."""
    fs = ab_mount(mount, fake)
    st = fs.save_and_wait("rich.py", RICH)
    assert st["state"] == "succeeded", st
    assert fs.read("rich.out") == "shown\n"
    assert fs.read("rich.result") == "Table(2 rows)\n"
    names = sorted(os.listdir(fs.path("rich.results")))
    # The chart's two forms first (in the order the service sent them), then the table's.
    assert names in (["1.png", "2.html", "3.md"], ["1.html", "2.png", "3.md"]), names
    png = [n for n in names if n.endswith(".png")][0]
    html = [n for n in names if n.endswith(".html")][0]
    assert fs.read_bytes("rich.results/" + png).startswith(b"\x89PNG\r\n\x1a\n")
    assert fs.read("rich.results/" + html) == "<b>chart</b>"
    assert fs.read("rich.results/3.md").startswith("| a |\n|---|")
    listing = fs.listdir()
    assert "rich.result" in listing and "rich.results" in listing, listing
    assert os.stat(fs.path("rich.result")).st_mode & 0o222 == 0
    with pytest.raises(OSError):
        open(fs.path("rich.result"), "w")
    # Kept with the run in the history.
    assert fs.read(".runs/rich/1/result") == "Table(2 rows)\n"
    fs.save_and_wait("rich.py", "print('plain')\n")
    assert not os.path.exists(fs.path("rich.result"))
    assert not os.path.exists(fs.path("rich.results"))
    assert "rich.results" not in fs.listdir()


@pytest.mark.skipif(not HAVE_NODE, reason="node is not installed (the fake runs JS with it)")
def test_cp_and_cat_js(fake, mount, tmp_path):
    """cp of a .js then cat: console.log in .out, main_result of the last expression, language javascript."""
    fs = ab_mount(mount, fake)
    src = tmp_path / "hello.js"
    src.write_text("console.log('hello js');\nconst a = 6;\na * 7;\n")
    subprocess.run(["cp", str(src), fs.path("hello.js")], check=True, timeout=20)
    r = subprocess.run(["cat", fs.path("hello.out")], stdout=subprocess.PIPE, timeout=30, check=True)
    assert r.stdout == b"hello js\n"
    assert fs.read("hello.error") == ""
    st = fs.status("hello")
    assert st["backend"] == "agentbay" and st["language"] == "javascript", st
    assert st["state"] == "succeeded" and st["main_result"] == "42", st
    assert isinstance(st["results"], list), st
    # A JS error is reported like a Python one.
    fs.write("bad.js", "console.log('before');\nnull.x;\n")
    st = fs.wait_run("bad")
    assert st["state"] == "failed", st
    assert fs.read("bad.out") == "before\n"
    assert first_line(fs.read("bad.error")).startswith("TypeError: "), fs.read("bad.error")


# ----------------------------------------------------------------------------
# 2.-3. Sessions per directory
# ----------------------------------------------------------------------------

def test_state_shared_within_directory_not_across(fake, mount):
    """a.py sets x and b.py of the same directory sees it; sub/b.py does not (NameError)."""
    fs = ab_mount(mount, fake)
    save_ok(fs, "a.py", "x = 41\nprint('set')\n", "set\n")
    save_ok(fs, "b.py", "print(x + 1)\n", "42\n")
    os.mkdir(fs.path("sub"))
    st = fs.save_and_wait("sub/b.py", "print(x + 1)\n")
    assert st["state"] == "failed", st
    err = fs.read("sub/b.error")
    assert first_line(err) == "NameError: name 'x' is not defined", err
    assert st["error"]["name"] == "NameError", st
    assert fs.read("sub/b.out") == ""


def test_one_session_per_directory(fake, mount):
    """Ten runs in one directory use one session; runs in three directories use three."""
    fs = ab_mount(mount, fake)
    for i in range(10):
        save_ok(fs, "a.py" if i % 2 else "b.py", "print(%d)\n" % i, "%d\n" % i)
    s = fake.stats()
    assert s["created"] == 1 and s["live"] == 1, s
    assert s["calls"].get("CallMcpTool") == 10 and s["calls"].get("CreateMcpSession") == 1, s
    os.mkdir(fs.path("d1"))
    os.makedirs(fs.path("d2/deeper"))
    for d in ("d1", "d2"):
        for i in range(3):
            save_ok(fs, d + "/s.py", "print(%d)\n" % i, "%d\n" % i)
    s = fake.stats()
    assert s["created"] == 3 and s["live"] == 3, s
    # A nested directory is a directory of its own.
    save_ok(fs, "d2/deeper/s.py")
    assert fake.stats()["created"] == 4


# ----------------------------------------------------------------------------
# 4. Sessions are released
# ----------------------------------------------------------------------------

def test_sessions_released_at_unmount(fake, mount):
    """fusermount3 -u releases every session the mount created."""
    fs = ab_mount(mount, fake)
    save_ok(fs, "a.py")
    os.mkdir(fs.path("d"))
    save_ok(fs, "d/a.py")
    assert fake.stats()["live"] == 2
    fs.unmount()
    s = fake.stats()
    assert s["live"] == 0 and s["created"] == 2 and s["released"] == 2, s


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_sessions_released_on_signal(fake, mount, sig):
    """SIGTERM / SIGINT to the daemon: exit 0 and every session released."""
    fs = ab_mount(mount, fake)
    save_ok(fs, "a.py")
    os.mkdir(fs.path("d"))
    save_ok(fs, "d/a.py")
    assert fake.stats()["live"] == 2
    stop_daemon_with(fs, sig)
    s = fake.stats()
    assert s["live"] == 0 and s["released"] == s["created"] == 2, s


def test_session_released_at_rmdir(fake, mount):
    """Removing a directory releases its session while the mount stays up."""
    fs = ab_mount(mount, fake)
    save_ok(fs, "a.py")
    os.mkdir(fs.path("d"))
    save_ok(fs, "d/a.py")
    assert fake.stats()["live"] == 2
    os.unlink(fs.path("d/a.py"))
    os.rmdir(fs.path("d"))
    wait_for(lambda: fake.stats()["live"] == 1, 5, "the session of d/ to be released")
    s = fake.stats()
    assert s["released"] == 1 and s["created"] == 2, s
    # The other directory's session is untouched and still shares state.
    save_ok(fs, "a.py", "print('again')\n", "again\n")
    assert fake.stats()["created"] == 2


@pytest.mark.deadline(30)
def test_session_released_when_idle(fake, mount):
    """-o session_idle=1: idle sessions are released without unmounting; a new save gets a new one."""
    fs = ab_mount(mount, fake, opts=["session_idle=1"])
    save_ok(fs, "a.py", "x = 1\nprint('a')\n", "a\n")
    os.mkdir(fs.path("d"))
    save_ok(fs, "d/a.py")
    assert fake.stats()["live"] == 2
    wait_for(lambda: fake.stats()["live"] == 0, 6, "the idle sessions to be released")
    s = fake.stats()
    assert s["released"] == 2 and s["created"] == 2, s
    assert fs.proc.poll() is None and is_mounted(fs.mnt)
    # The next run starts in a fresh session: the old state is gone.
    st = fs.save_and_wait("b.py", "print(x)\n")
    assert st["state"] == "failed" and st["error"]["name"] == "NameError", st
    assert fake.stats()["created"] == 3


# ----------------------------------------------------------------------------
# 5. The session disappears
# ----------------------------------------------------------------------------

def test_session_gone_is_retried_once(fake, mount):
    """InvalidMcpSession.NotFound: the run is retried once in a new session; twice: a clear error."""
    fs = ab_mount(mount, fake)
    save_ok(fs, "a.py")
    assert fake.stats()["created"] == 1
    fake.fault("CallMcpTool", "session_gone")
    save_ok(fs, "a.py", "print('retried')\n", "retried\n")
    s = fake.stats()
    assert s["created"] == 2 and s["live"] == 1, s
    assert s["calls"]["CallMcpTool"] == 3, s

    fake.fault("CallMcpTool", "session_gone", count=2)
    st = fs.save_and_wait("a.py", "print('not run')\n")
    assert st["state"] == "failed", st
    check_error(fs, "a", "AgentBayError", needles=["InvalidMcpSession.NotFound", "did not run"])
    assert fs.read("a.out") == ""
    s = fake.stats()
    assert s["calls"]["CallMcpTool"] == 5, s
    save_ok(fs, "a.py", "print('back')\n", "back\n")


# ----------------------------------------------------------------------------
# 6. Throttling
# ----------------------------------------------------------------------------

def test_throttled_create_is_retried_with_backoff(fake, mount):
    """Throttling on CreateMcpSession (twice) is retried with backoff and the run succeeds."""
    fs = ab_mount(mount, fake)
    fake.fault("CreateMcpSession", "throttling", count=2)
    t0 = time.monotonic()
    save_ok(fs, "a.py")
    elapsed = time.monotonic() - t0
    s = fake.stats()
    assert s["calls"]["CreateMcpSession"] == 3 and s["created"] == 1, s
    assert elapsed >= 0.5, "two throttled creates were retried without backing off (%.2f s)" % elapsed


def test_throttled_call_is_not_retried(fake, mount):
    """Throttling on CallMcpTool: .error says so, exactly one call was made, and the next save works."""
    fs = ab_mount(mount, fake)
    save_ok(fs, "a.py")
    fake.fault("CallMcpTool", "throttling")
    before = calls(fake, "CallMcpTool")
    st = fs.save_and_wait("a.py", "print('throttled')\n")
    assert st["state"] == "failed", st
    text = check_error(fs, "a", "AgentBayError", needles=["Throttling.User"], request_id=True)
    assert re.search(r"(?i)throttl", first_line(text)), text
    time.sleep(0.3)
    assert calls(fake, "CallMcpTool") == before + 1, fake.stats()["calls"]
    save_ok(fs, "a.py")


# ----------------------------------------------------------------------------
# 7. Every failure: a clear .error, and the next save works
# ----------------------------------------------------------------------------

# fault -> (.error needles, regexes, request id expected, says "may have run")
FAULTS = {
    "not_login": (["NOT_LOGIN", "AGENTBAY_API_KEY"], [r"(?i)region"], True, False),
    "http500": (["InternalError", "500"], [], True, True),
    "http503": (["ServiceUnavailable", "503"], [], True, True),
    # The service closes the (reused) connection without a reply: libcurl
    # would resend the request on a new connection, so run_code takes a fresh
    # one and the code is never sent twice.
    "close": ([], [r"(?i)connection|closed|broke"], False, True),
    "garbage": (["502 Bad Gateway"], [], False, True),
    "truncated": ([], [r"(?i)connection|closed|broke|cut|incomplete|partial"], False, True),
    # The oversized reply is dropped, but its request id (the x-acs-request-id
    # header) is still named in .error.
    "huge": ([], [r"(?i)larger|too (big|large)|exceed"], True, True),
    "success_false": (["InternalError"], [], True, True),
    "empty_data": ([], [r"(?i)empty|no data"], True, True),
    "tool_not_found": (["code_latest"], [], True, False),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_call_fault_gives_clear_error_then_recovers(fake, mount, fault):
    """A misbehaving CallMcpTool reply: AgentBayError with the code and request id, no retry, next save works."""
    needles, patterns, rid, may_have_run = FAULTS[fault]
    fs = ab_mount(mount, fake)
    save_ok(fs, "a.py")
    fake.fault("CallMcpTool", fault)
    before = calls(fake, "CallMcpTool")
    st = fs.save_and_wait("a.py", "print('once')\n")
    assert st["state"] == "failed", st
    text = check_error(fs, "a", "AgentBayError", needles, rid, patterns)
    if may_have_run:
        assert MAY_HAVE_RUN.search(text), "%s: .error does not say the code may have run:\n%s" \
            % (fault, text)
    assert len(first_line(text)) > len("AgentBayError: ") + 10, text
    # Nothing is retried once the request reached the service: the code may have run.
    time.sleep(0.3)
    assert calls(fake, "CallMcpTool") == before + 1, (fault, fake.stats()["calls"])
    assert fake.stats()["faults"] == [], "the fault was not consumed"
    save_ok(fs, "a.py", "print('recovered')\n", "recovered\n")


def test_wrong_key_says_not_login(fakes, mount):
    """A key the service does not know: NOT_LOGIN naming AGENTBAY_API_KEY and the region, without the key."""
    fake = fakes(key="akm-the-right-key-" + uuid.uuid4().hex)
    fs = ab_mount(mount, fake, key=KEY)
    st = fs.save_and_wait("a.py", "print('never')\n")
    assert st["state"] == "failed", st
    text = check_error(fs, "a", "AgentBayError", needles=["NOT_LOGIN", "AGENTBAY_API_KEY"],
                       request_id=True, patterns=[r"(?i)region"])
    assert fake.url in text or "127.0.0.1" in text, "the endpoint is not named:\n%s" % text
    assert fake.key not in text
    assert calls(fake, "CallMcpTool") == 0
    # The daemon stays up: a second save gives the same clear answer.
    st = fs.save_and_wait("a.py", "print('never again')\n")
    assert st["state"] == "failed" and "NOT_LOGIN" in fs.read("a.error"), st


def test_image_without_run_code(fake, mount):
    """-o image=linux_latest: run_code is not found and .error says to use code_latest."""
    fs = ab_mount(mount, fake, opts=["image=linux_latest"])
    st = fs.save_and_wait("a.py", "print('x')\n")
    assert st["state"] == "failed", st
    check_error(fs, "a", "AgentBayError", needles=["code_latest"], request_id=True)
    created = [r for r in fake.stats()["requests"] if r["action"] == "CreateMcpSession"]
    assert created and created[0]["form"].get("ImageId") == "linux_latest", created


def test_connection_refused(fakes, mount):
    """With the service gone, .error says it cannot be reached; once it is back, saves work again."""
    fake = fakes()
    fs = ab_mount(mount, fake)
    save_ok(fs, "a.py")
    port = fake.port
    fake.stop()
    os.mkdir(fs.path("new"))
    for name in ("a.py", "new/b.py"):
        st = fs.save_and_wait(name, "print('unreachable')\n", timeout=30)
        assert st["state"] == "failed", st
        text = check_error(fs, name[:-3], "AgentBayError", needles=["cannot reach", "did not run"])
        assert "127.0.0.1" in text and str(port) in text, text
    # A new service on the same address: the old session is unknown there, so
    # the run is retried in a new one.
    fake2 = fakes(port=port)
    save_ok(fs, "a.py", "print('reachable')\n", "reachable\n")
    save_ok(fs, "new/b.py", "print('reachable')\n", "reachable\n")
    assert fake2.stats()["created"] == 2


@pytest.mark.deadline(40)
def test_client_timeout_when_reply_stalls(fake, mount):
    """AGENTBAY_TIMEOUT_MS=2000, -o timeout=1 and a reply that never comes: timed_out within ~10 s."""
    fs = ab_mount(mount, fake, opts=["timeout=1"], env={"AGENTBAY_TIMEOUT_MS": "2000"})
    save_ok(fs, "a.py")
    fake.variant(timeout_mode="stall")
    t0 = time.monotonic()
    fs.write("a.py", "import time\nprint('start', flush=True)\ntime.sleep(30)\n")
    st = fs.wait_run("a", 2, timeout=15)
    elapsed = time.monotonic() - t0
    assert st["state"] == "timed_out", st
    assert elapsed < 10.5, "took %.1f s" % elapsed
    check_error(fs, "a", "TimeoutError")
    fake.reset()
    save_ok(fs, "a.py", "print('quick')\n", "quick\n")


def test_service_timeout_error(fake, mount):
    """A run over -o timeout reported by run_code: timed_out with TimeoutError, next save works."""
    fs = ab_mount(mount, fake, opts=["timeout=1"])
    st = fs.save_and_wait("a.py", "import time\nprint('start')\ntime.sleep(10)\n", timeout=20)
    assert st["state"] == "timed_out", st
    check_error(fs, "a", "TimeoutError")
    args = [json.loads(r["form"]["Args"]) for r in fake.stats()["requests"]
            if r["action"] == "CallMcpTool"]
    assert args[-1]["timeout_s"] == 1, args
    save_ok(fs, "a.py", "print('quick')\n", "quick\n")


def test_gateway_timeout_504(fake, mount):
    """An HTTP 504 from the gateway on a long run: timed_out, TimeoutError with the code and request id."""
    fs = ab_mount(mount, fake, opts=["timeout=1"])
    fake.variant(timeout_mode="http504")
    st = fs.save_and_wait("a.py", "import time\ntime.sleep(10)\n", timeout=20)
    assert st["state"] == "timed_out", st
    check_error(fs, "a", "TimeoutError", needles=["GatewayTimeout", "504"], request_id=True)
    save_ok(fs, "a.py", "print('quick')\n", "quick\n")


# ----------------------------------------------------------------------------
# 8.-9. Limits
# ----------------------------------------------------------------------------

def test_timeout_above_60_is_clamped(fake, mount):
    """-o timeout=90: the mount says runs get 60 s, and run_code receives timeout_s 60."""
    fs = ab_mount(mount, fake, opts=["timeout=90"])
    fs.allow_log(r"warning: .*timeout=90.*\b60\b")
    save_ok(fs, "a.py")
    log = fs.log_text()
    lines = [line for line in log.splitlines() if "timeout=90" in line and not line.startswith("#")]
    assert lines and re.search(r"\b60\b", lines[0]), log
    args = [json.loads(r["form"]["Args"]) for r in fake.stats()["requests"]
            if r["action"] == "CallMcpTool"]
    assert len(args) == 1 and args[0]["timeout_s"] == 60, args
    assert args[0]["language"] == "python" and args[0]["code"] == "print('fine')\n", args


def test_code_too_large_is_not_sent(fake, mount):
    """A 70 KB script is refused before sending (CodeTooLarge); a 40 KB one runs."""
    fs = ab_mount(mount, fake)
    big = "x = '%s'\nprint(len(x))\n" % ("a" * 70000)
    st = fs.save_and_wait("big.py", big)
    assert st["state"] == "failed", st
    check_error(fs, "big", "CodeTooLarge")
    assert fs.read("big.out") == ""
    assert calls(fake, "CallMcpTool") == 0, fake.stats()["calls"]
    ok = "x = '%s'\nprint(len(x))\n" % ("b" * 40000)
    save_ok(fs, "ok.py", ok, "40000\n")


# ----------------------------------------------------------------------------
# 10. Every reply layout of run_code
# ----------------------------------------------------------------------------

VARIANTS = ["data_as_string", "double_encode_results", "results_as_objects", "nested_results",
            "iserror_empty_execution_error", "error_without_iserror", "plain_text",
            "legacy_rich", "snake_case"]

GOOD = "print('out line')\n6 * 7\n"
BAD = "print('before')\n1 / 0\n"


@pytest.mark.parametrize("variant", VARIANTS)
def test_reply_variant(fake, mount, variant):
    """Each run_code reply layout: stdout in .out, the exception in .error, the main result in .status."""
    fs = ab_mount(mount, fake)
    fake.variant(**{variant: True})
    st = fs.save_and_wait("good.py", GOOD)
    assert st["state"] == "succeeded", (st, fs.read("good.error"))
    assert fs.read("good.error") == ""
    assert st["backend"] == "agentbay" and st["error"] is None, st
    if variant == "plain_text":
        # The plain text layout carries stdout only.
        assert fs.read("good.out") == "out line\n"
    else:
        assert fs.read("good.out") == "out line\n"
        assert st["main_result"] == "42", st
        assert [r["text"] for r in st["results"] if r["is_main_result"]] == ["42"], st

    st = fs.save_and_wait("bad.py", BAD)
    err = fs.read("bad.error")
    out = fs.read("bad.out")
    # error_without_iserror: the only sign of the exception is the traceback
    # that ends stderr (isError false, executionError empty); it still fails.
    assert st["state"] == "failed", (st, err)
    assert first_line(err) == "ZeroDivisionError: division by zero", err
    assert st["error"] == {"name": "ZeroDivisionError", "value": "division by zero"}, st
    assert st["main_result"] is None, st
    if variant == "plain_text":
        assert "before" in out + err, (out, err)
    else:
        assert out == "before\n", out
        assert "Traceback" in err, err


# ----------------------------------------------------------------------------
# 11. The key stays secret
# ----------------------------------------------------------------------------

def proc_file(pid, name):
    try:
        with open("/proc/%d/%s" % (pid, name), "rb") as f:
            return f.read()
    except PermissionError:
        return b""  # unreadable is not a leak


@pytest.mark.deadline(60)
def test_key_never_leaks(fake, mount):
    """The key is in no store file, log (even with -d), cmdline or environ; on the wire only as the form Authorization."""
    fs = ab_mount(mount, fake, args=["-d"])
    fs.allow_log(r"^\s*unique: \d+, (error|success)")
    keyb = KEY.encode()
    # While it runs: the key is not in the daemon's argument list or environment.
    pid = fs.proc.pid
    assert keyb not in proc_file(pid, "cmdline")
    environ = proc_file(pid, "environ")
    assert keyb not in environ, "the key is in /proc/PID/environ"
    if environ:  # readable (we are root): proves the search looked at the right bytes
        assert b"AGENTBAY_ENDPOINT=" + fake.url.encode() in environ

    save_ok(fs, "a.py", "print('ok')\n6 * 7\n", "ok\n")
    fs.save_and_wait("a.py", "import sys\nprint('boom', file=sys.stderr)\n1 / 0\n")
    for fault in ("not_login", "http500", "garbage", "session_gone", "throttling"):
        fake.fault("CallMcpTool", fault)
        fs.save_and_wait("a.py", "print(%r)\n" % fault)
    fake.fault("CreateMcpSession", "not_login")
    os.mkdir(fs.path("d"))
    fs.save_and_wait("d/b.js" if HAVE_NODE else "d/b.py", "1\n")
    big = "x = '%s'\n" % ("a" * 70000)
    fs.save_and_wait("big.py", big)
    save_ok(fs, "d/c.py", "print('last')\n", "last\n")
    assert keyb not in proc_file(pid, "cmdline")
    assert keyb not in proc_file(pid, "environ"), "the key is in /proc/PID/environ"

    requests = fake.stats()["requests"]
    fs.unmount()

    leaks = []
    for root, dirs, files in os.walk(fs.store):
        for name in files:
            p = os.path.join(root, name)
            with open(p, "rb") as f:
                if keyb in f.read():
                    leaks.append(p)
    assert not leaks, "the key is in store files: %s" % leaks
    with open(fs.log, "rb") as f:
        log = f.read()
    assert b"unique:" in log, "-d did not log FUSE requests"
    assert keyb not in log, "the key is in the daemon log"

    assert requests
    for r in requests:
        where = "%s request" % r["action"]
        assert KEY not in r["path"], where
        for k, v in r["query"].items():
            assert KEY not in k and KEY not in v, "%s: the key is in the query (%s)" % (where, k)
        for k, v in r["headers"].items():
            assert KEY not in v, "%s: the key is in the header %s" % (where, k)
            assert k != "authorization", "%s: an Authorization header was sent" % where
        assert r["form"].get("Authorization") == "Bearer " + KEY, (where, r["form"].keys())
        for k, v in r["form"].items():
            if k != "Authorization":
                assert KEY not in v, "%s: the key is in the form field %s" % (where, k)


def test_api_key_file(fake, mount, tmp_path):
    """-o api_key_file with a 0600 file works (and the key is not in the environ); 0644 is refused."""
    kf = tmp_path / "agentbay.key"
    kf.write_text(KEY + "\n")
    os.chmod(kf, 0o600)
    fs = mount(opts=["backend=agentbay", "api_key_file=%s" % kf], env=ab_env(fake, key=None))
    save_ok(fs, "a.py")
    assert fs.status("a")["backend"] == "agentbay"
    assert KEY.encode() not in proc_file(fs.proc.pid, "environ")
    assert KEY.encode() not in proc_file(fs.proc.pid, "cmdline")
    fs.unmount()
    with open(fs.log, "rb") as f:
        assert KEY.encode() not in f.read()

    os.chmod(kf, 0o644)
    mnt = tmp_path / "mnt2"
    store = tmp_path / "store2"
    mnt.mkdir()
    store.mkdir()
    rc, out = run_cli(["-f", "-o", "store=%s,backend=agentbay,api_key_file=%s" % (store, kf),
                       str(mnt)], ab_env(fake, key=None), str(mnt))
    assert rc not in (0, None), (rc, out)
    assert "chmod 600" in out, out
    assert KEY not in out
    assert not is_mounted(str(mnt))


# ----------------------------------------------------------------------------
# 12. Parallel across directories, in order within one
# ----------------------------------------------------------------------------

def test_directories_run_in_parallel(fake, mount):
    """Two directories each sleeping 1.5 s, saved at once, finish in under 2.8 s and overlap."""
    fs = ab_mount(mount, fake)
    os.mkdir(fs.path("d1"))
    os.mkdir(fs.path("d2"))
    code = "import time\ntime.sleep(1.5)\nprint('slept')\n"
    barrier = threading.Barrier(2)

    def save(name):
        barrier.wait()
        fs.write(name, code)

    t0 = time.monotonic()
    threads = [threading.Thread(target=save, args=(n,)) for n in ("d1/s.py", "d2/s.py")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    s1 = fs.wait_run("d1/s", 1, timeout=10)
    s2 = fs.wait_run("d2/s", 1, timeout=10)
    elapsed = time.monotonic() - t0
    assert s1["state"] == s2["state"] == "succeeded", (s1, s2)
    assert elapsed < 2.8, "two 1.5 s runs in two directories took %.2f s" % elapsed
    assert s1["started_at"] < s2["finished_at"] and s2["started_at"] < s1["finished_at"], (s1, s2)
    assert fake.stats()["created"] == 2


def test_one_directory_runs_in_save_order(fake, mount):
    """a.py then b.py saved at once in one directory: b runs after a and sees a's item."""
    fs = ab_mount(mount, fake)
    fs.write("a.py", "import time\ntime.sleep(0.5)\nL = globals().setdefault('L', [])\n"
                     "L.append('a')\nprint(L)\n")
    fs.write("b.py", "L = globals().setdefault('L', [])\nL.append('b')\nprint(L)\n")
    sa = fs.wait_run("a", 1)
    sb = fs.wait_run("b", 1)
    assert sa["state"] == sb["state"] == "succeeded", (sa, sb)
    assert fs.read("a.out") == "['a']\n"
    assert fs.read("b.out") == "['a', 'b']\n"


def test_queued_run_of_a_directory_is_pending(fake, mount):
    """A run waiting for the previous run of its directory is pending, and starts after that one ends."""
    fs = ab_mount(mount, fake)
    fs.write("a.py", "import time\ntime.sleep(1)\nprint('a')\n")
    fs.write("b.py", "print('b')\n")
    fs.wait_state("a", "running", timeout=10)
    # b waits in its directory's queue behind a: "pending" (saved, not started).
    sb = fs.status("b")
    sa = fs.status("a")
    if sa["state"] == "running":
        assert sb["state"] == "pending", (sa, sb)
    sa = fs.wait_run("a", 1)
    sb = fs.wait_run("b", 1)
    assert sa["state"] == sb["state"] == "succeeded", (sa, sb)
    assert sb["started_at"] >= sa["finished_at"], (sa, sb)


# ----------------------------------------------------------------------------
# 13. Choosing the backend
# ----------------------------------------------------------------------------

def test_backend_auto_with_key_is_agentbay(fake, mount):
    """-o backend=auto with a key set runs scripts on AgentBay."""
    fs = mount(opts=["backend=auto"], env=ab_env(fake))
    st = fs.save_and_wait("a.py", "print('where')\n")
    assert st["backend"] == "agentbay" and st["state"] == "succeeded", st
    assert calls(fake, "CallMcpTool") == 1
    assert "agentbay" in fs.log_text()


def test_backend_auto_without_key_is_local(fake, mount):
    """-o backend=auto without a key runs scripts locally (the service is never asked)."""
    fs = mount(opts=["backend=auto"], env=ab_env(fake, key=None))
    st = fs.save_and_wait("a.py", "print('where')\n")
    assert st["backend"] == "local" and st["state"] == "succeeded", st
    assert fs.read("a.out") == "where\n"
    assert fake.stats()["calls"] == {}


def test_backend_agentbay_without_key_refuses(fake, tmp_path):
    """-o backend=agentbay without a key: no mount, non-zero exit, a message naming AGENTBAY_API_KEY."""
    mnt = tmp_path / "mnt"
    store = tmp_path / "store"
    mnt.mkdir()
    store.mkdir()
    rc, out = run_cli(["-f", "-o", "store=%s,backend=agentbay" % store, str(mnt)],
                      ab_env(fake, key=None), str(mnt))
    assert rc not in (0, None), (rc, out)
    assert "AGENTBAY_API_KEY" in out, out
    assert not is_mounted(str(mnt))
    assert fake.stats()["calls"] == {}


def test_config_file_environment_and_options_in_order(fake, mount, tmp_path):
    """The configuration file is overridden by the environment, and both by
    -o: a file naming a dead endpoint and a missing key file still mounts
    against the fake when AGENTBAY_ENDPOINT and AGENTBAY_API_KEY say so; with
    a dead AGENTBAY_ENDPOINT, -o endpoint= (the fake) wins. A file alone
    (endpoint and key file) is enough to use agentbay."""
    home = tmp_path / "xdg"
    (home / "agentbayfs").mkdir(parents=True)
    conf = home / "agentbayfs" / "config"
    conf.write_text("backend = agentbay\nendpoint = http://127.0.0.1:9\n"
                    "api_key_file = %s\n" % (tmp_path / "missing.key"))
    fs = mount(env={"XDG_CONFIG_HOME": str(home), "AGENTBAY_ENDPOINT": fake.url,
                    "AGENTBAY_API_KEY": KEY})
    save_ok(fs, "a.py")
    fs2 = mount(opts=["endpoint=" + fake.url],
                env={"XDG_CONFIG_HOME": str(home), "AGENTBAY_ENDPOINT": "http://127.0.0.1:9",
                     "AGENTBAY_API_KEY": KEY})
    save_ok(fs2, "b.py")
    keyfile = tmp_path / "agentbay.key"
    keyfile.write_text(KEY + "\n")
    keyfile.chmod(0o600)
    conf.write_text("endpoint = %s\napi_key_file = %s\n" % (fake.url, keyfile))
    fs3 = mount(env={"XDG_CONFIG_HOME": str(home)})
    st = save_ok(fs3, "c.py")
    assert st["backend"] == "agentbay"

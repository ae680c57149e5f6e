"""The fork server of the local backend (-o forkserver=on|off).

A fork server is a bubblewrap sandbox whose Python interpreter was started
with the extra argument "zygote"; it forks every Python run of its slot (of
all slots when the daemon is not root) into namespaces and file systems of
the run's own, and keeps the next run set up ahead, waiting for its script.  The tests find a mount's fork servers among the daemon's
descendants, as test_pool finds its spares, and prove what a forked run can
see and keep from the run itself.  test_containment passes with
AGENTBAYFS_TEST_OPTS=forkserver=on as well as without.
"""

import os
import shutil
import signal
import tempfile
import textwrap
import time

import pytest

from conftest import run_binary
from test_containment import RECVMSG_SYSCALL, SandboxWatch, snapshot
from test_pool import SLOW, descendants, run_ok, wait_gone

ON = ["forkserver=on"]


def is_bwrap(p):
    return p is not None and os.path.basename(p.cmd.split(" ")[0]) == "bwrap"


def servers(m):
    """The fork server interpreters under M's daemon: bubblewrap's child,
    not the forks of one (runs, and runs set up ahead)."""
    procs = snapshot()
    return [p for p in descendants(procs, m.proc.pid)
            if p.cmd.endswith(" zygote") and not is_bwrap(p) and is_bwrap(procs.get(p.ppid))]


def wait_servers(m, pred, what, timeout=15.0):
    deadline = time.monotonic() + timeout * SLOW
    while True:
        found = servers(m)
        if pred(found):
            return found
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s; fork servers: %s" % (what, found))
        time.sleep(0.05)


LEAVE = textwrap.dedent("""\
    import builtins, json, os, sys
    for d in ("/tmp", "/work", "/dev/shm"):
        with open(d + "/left-behind", "w") as f:
            f.write("x")
    builtins.left_behind = 1
    json.left_behind = 1
    sys.modules["left_behind"] = json
    os.environ["LEFT_BEHIND"] = "1"
    print("left")
""")

LOOK = textwrap.dedent("""\
    import builtins, json, os, socket, sys
    found = [d for d in ("/tmp", "/work", "/dev/shm") if os.path.exists(d + "/left-behind")]
    found += [w for w, there in (("builtins", hasattr(builtins, "left_behind")),
                                 ("json", hasattr(json, "left_behind")),
                                 ("module", "left_behind" in sys.modules),
                                 ("environ", "LEFT_BEHIND" in os.environ)) if there]
    print("found", found)
    print("pid", os.getpid(), os.getppid(), socket.gethostname())
    status = dict(l.split(":", 1) for l in open("/proc/self/status") if ":" in l)
    print("caps", status["CapEff"].strip(), status["CapBnd"].strip(), status["CapAmb"].strip())
    print("nnp", status["NoNewPrivs"].strip(), "seccomp", status["Seccomp"].strip())
    print("proc1", os.listdir("/proc/1"))
    print("pids", sorted(int(p) for p in os.listdir("/proc") if p.isdigit()))
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    socket.create_connection(s.getsockname()).close()
    print("loopback up")
    try:
        open("/proc/sys/kernel/hostname", "w").write("x")
        print("proc/sys writable")
    except OSError as e:
        print("proc/sys", e.errno)
    print("work", os.getcwd())
""")


@pytest.mark.deadline(90)
def test_each_run_a_fresh_copy(mount):
    """What a forked run leaves (files in /tmp, /work and /dev/shm, changed
    modules, builtins and environment) is not there for the next run, which
    still comes from the same fork server, set up ahead; the run is pid 2 under an init
    of its own, with no capabilities, no new privileges, the seccomp
    filter, /proc/1 hidden, the kernel's knobs read-only and its own
    loopback up."""
    m = mount(opts=ON)
    assert servers(m) == []
    assert run_ok(m, "leave.py", LEAVE)[1] == "left\n"
    first = wait_servers(m, lambda s: len(s) >= 1, "a fork server")
    # The next run set up ahead: a process below the server waits for it.
    deadline = time.monotonic() + 15 * SLOW
    while not any(SandboxWatch.waits_in(q.pid, RECVMSG_SYSCALL, 5)
                  for p in servers(m) for q in SandboxWatch.below(snapshot(), p.pid)):
        assert time.monotonic() < deadline, "no run set up ahead under %s" % servers(m)
        time.sleep(0.05)
    out = run_ok(m, "look.py", LOOK)[1]
    assert "found []\n" in out, out
    assert "pid 2 1 sandbox\n" in out, out
    assert "caps 0000000000000000 0000000000000000 0000000000000000\n" in out, out
    assert "nnp 1 seccomp 2\n" in out, out
    assert "proc1 []\n" in out, out
    assert "pids [1, 2]\n" in out, out
    assert "loopback up\n" in out, out
    assert "proc/sys 30\n" in out, out   # EROFS
    assert "work /work\n" in out, out
    # The same server served both: runs do not start one each.
    still = servers(m)
    assert {(p.pid, p.start) for p in first} <= {(p.pid, p.start) for p in still}, (first, still)


@pytest.mark.deadline(120)
def test_time_limit_cancel_and_a_killed_server(mount):
    """A forked run past its time limit is stopped and its processes go; a
    run saved again while it runs is cancelled; a fork server killed from
    outside is started again for the next run, which succeeds; idle fork
    servers go after -o warm_idle."""
    m = mount(opts=ON + ["timeout=2", "warm_idle=3"])
    run_ok(m, "first.py", "print(1)\n")
    st = m.save_and_wait("spin.py", "import os\nos.fork()\nwhile True:\n    pass\n", 30 * SLOW)
    assert st["state"] == "timed_out", st
    # Saved again while running: the first run is cancelled.
    m.write("slow.py", "import time\ntime.sleep(30)\n")
    m.wait_state("slow", "running")
    m.write("slow.py", "print('second')\n")
    st = m.wait_run("slow", 2, 30 * SLOW)
    assert st["state"] == "succeeded" and m.read("slow.out") == "second\n", st
    # Killed from outside: the next run still works.
    for p in servers(m):
        os.kill(p.pid, signal.SIGKILL)
    wait_gone(servers(m) or [], "the killed fork servers")
    assert run_ok(m, "after.py", "print('after')\n")[1] == "after\n"
    assert servers(m), "no fork server after the kill"
    # Idle: gone after warm_idle (3 s), with nothing of theirs left.
    wait_servers(m, lambda s: s == [], "the idle fork servers to go", timeout=15)
    left = [p for p in descendants(snapshot(), m.proc.pid) if p.state != "Z"]
    assert left == [], left
    m.check_alive()


@pytest.mark.deadline(120)
def test_a_server_that_cannot_start_turns_itself_off(mount):
    """An interpreter that fails in the fork server's role (here a wrapper
    that refuses the "zygote" argument) costs no run: each goes again cold,
    and after three the daemon says once that it starts every run cold."""
    # Where the runs' uids can reach it and the sandbox can bind its prefix
    # (its own /tmp would hide one under /tmp).
    top = tempfile.mkdtemp(prefix="agentbayfs-forkserver-", dir="/var/tmp")
    try:
        os.chmod(top, 0o755)
        wrapper = os.path.join(top, "py", "bin", "python3")
        os.makedirs(os.path.dirname(wrapper))
        with open(wrapper, "w") as f:
            f.write('#!/bin/sh\nfor a; do last="$a"; done\n'
                    '[ "$last" = zygote ] && { echo "no zygote here" >&2; exit 3; }\n'
                    'exec /usr/bin/python3 "$@"\n')
        os.chmod(wrapper, 0o755)
        m = mount(opts=ON + ["python=" + wrapper])
        m.allow_log(r"no zygote here")
        m.allow_log(r"the Python fork server keeps failing to start runs")
        for i in range(5):
            assert run_ok(m, "r%d.py" % i, "print(%d)\n" % i)[1] == "%d\n" % i
        text = m.log_text()
        assert text.count("the Python fork server keeps failing") == 1, text
        m.check_alive()
        m.unmount()
    finally:
        shutil.rmtree(top, ignore_errors=True)


@pytest.mark.deadline(60)
def test_forkserver_off_and_bad_values(mount, bin_path, tmp_path):
    """-o forkserver=off starts no fork server; a bad value is refused with
    a clear message before mounting."""
    m = mount(opts=["forkserver=off"])
    run_ok(m, "plain.py", "print('cold')\n")
    assert servers(m) == []
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    (tmp_path / "store").mkdir()
    rc, out, err = run_binary(["-f", "-o", "store=%s,forkserver=maybe" % (tmp_path / "store"), str(mnt)],
                              mnt=str(mnt))
    assert rc not in (0, None) and "bad forkserver 'maybe': use -o forkserver=on or -o forkserver=off" in err, (
        rc, out, err)

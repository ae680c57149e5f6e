"""Run history under ".runs/<stem>/<n>/" and the live overview
"/.agentbayfs/status": what each kept run holds, rotation to the last
-o history=N, read-only but removable, hidden from listings like ZFS's
".zfs", gone with its script, kept across a remount; the overview lists
running, queued and finished runs with their elapsed time."""

import errno
import json
import os
import shutil
import subprocess
import threading
import time

import pytest


def runs_of(m, stem, sub=""):
    return sorted(int(n) for n in os.listdir(m.path(os.path.join(sub, ".runs", stem))))


def test_each_run_is_kept_and_diff_works(mount):
    """Three runs of x.py: .runs/x/1..3 each hold the code that ran, out,
    err, error and status; diff between two runs' out shows the change."""
    m = mount(opts=["warm=0"])
    for i in (1, 2, 3):
        code = "import sys\nprint('line', %d)\nprint('e%d', file=sys.stderr)\n" % (i, i)
        if i == 3:
            code += "raise ValueError('three')\n"
        m.save_and_wait("x.py", code)
    assert runs_of(m, "x") == [1, 2, 3]
    for i in (1, 2, 3):
        d = ".runs/x/%d/" % i
        assert sorted(os.listdir(m.path(d))) == ["err", "error", "out", "status", "x.py"]
        assert m.read(d + "out") == "line %d\n" % i
        assert m.read(d + "err").startswith("e%d\n" % i)
        assert ("print('line', %d)" % i) in m.read(d + "x.py")
        st = json.loads(m.read(d + "status"))
        assert st["run"] == i and st["script"] == "x.py", st
        assert st["state"] == ("failed" if i == 3 else "succeeded"), st
    assert m.read(".runs/x/3/error").startswith("ValueError: three\n")
    assert m.read(".runs/x/3/error") == m.read("x.error")
    assert m.read(".runs/x/2/error") == ""
    r = subprocess.run(["diff", m.path(".runs/x/1/out"), m.path(".runs/x/2/out")],
                       stdout=subprocess.PIPE, timeout=10)
    assert r.returncode == 1 and b"< line 1" in r.stdout and b"> line 2" in r.stdout, r.stdout


def test_history_keeps_the_last_n(mount):
    """With -o history=3, six runs leave runs 4, 5 and 6."""
    m = mount(opts=["warm=0", "history=3"])
    for i in range(1, 7):
        m.save_and_wait("r.py", "print(%d)\n" % i)
    assert runs_of(m, "r") == [4, 5, 6]
    for i in (4, 5, 6):
        assert m.read(".runs/r/%d/out" % i) == "%d\n" % i
        assert json.loads(m.read(".runs/r/%d/status" % i))["run"] == i


def test_history_off(mount):
    """-o history=0 keeps no history."""
    m = mount(opts=["warm=0", "history=0"])
    m.save_and_wait("x.py", "print(1)\n")
    assert not os.path.exists(m.path(".runs"))
    assert not os.path.exists(m.store_path(".agentbayfs/.runs"))


def test_history_is_hidden_read_only_and_removable(mount):
    """.runs is not listed (by name only, like ZFS's .zfs), cannot be
    written, created or renamed into, but can be removed with rm -r; a
    script removed takes its history along."""
    m = mount(opts=["warm=0"])
    m.save_and_wait("x.py", "print(1)\n")
    m.save_and_wait("y.py", "print(2)\n")
    assert ".runs" not in os.listdir(m.mnt)
    assert os.path.isdir(m.path(".runs/x/1"))
    out = m.path(".runs/x/1/out")
    assert os.stat(out).st_mode & 0o222 == 0
    for op in (lambda: open(out, "w"), lambda: open(out, "a"),
               lambda: open(m.path(".runs/x/1/new"), "w"),
               lambda: os.mkdir(m.path(".runs/x/9")),
               lambda: os.rename(out, m.path(".runs/x/1/moved")),
               lambda: os.chmod(out, 0o644),
               lambda: os.setxattr(out, "user.a", b"1")):
        with pytest.raises(OSError) as e:
            op()
        assert e.value.errno in (errno.EACCES, errno.EPERM), e.value
    with pytest.raises(OSError) as e:
        os.mkdir(m.path(".runs"))
    assert e.value.errno == errno.EEXIST
    assert m.read(".runs/x/1/out") == "1\n"
    # A script's own history goes with it; rm -r clears the rest.
    os.unlink(m.path("x.py"))
    assert not os.path.exists(m.path(".runs/x"))
    assert runs_of(m, "y") == [1]
    subprocess.run(["rm", "-r", m.path(".runs/y")], check=True, timeout=10)
    assert not os.path.exists(m.path(".runs/y"))
    # Numbering goes on from the status.
    st = m.save_and_wait("y.py", "print(3)\n")
    assert st["run"] == 2 and runs_of(m, "y") == [2]


def test_history_in_subdirectory_and_after_remount(mount):
    """Each directory has its own .runs; the history outlives a remount and
    numbering goes on; rmdir of a directory whose scripts are gone works."""
    m = mount(opts=["warm=0"])
    os.mkdir(m.path("sub"))
    m.save_and_wait("sub/s.py", "print('a')\n")
    assert runs_of(m, "s", "sub") == [1]
    assert not os.path.exists(m.path(".runs/s"))
    m2 = m.remount()
    assert m2.read("sub/.runs/s/1/out") == "a\n"
    m2.save_and_wait("sub/s.py", "print('b')\n")
    assert runs_of(m2, "s", "sub") == [1, 2]
    os.unlink(m2.path("sub/s.py"))
    os.rmdir(m2.path("sub"))


def test_overview_lists_running_queued_and_recent(mount):
    """/.agentbayfs/status: a header, a running script with its elapsed
    time growing, one queued behind it (jobs=1), and finished ones with how
    they ended; cat works (no size ahead, like /proc)."""
    m = mount(opts=["warm=0", "jobs=1"])
    m.save_and_wait("done.py", "raise KeyError('k')\n")
    m.write("slow.py", "import time\ntime.sleep(30)\n")
    m.wait_state("slow", "running")
    m.write("next.py", "print(1)\n")
    assert ".agentbayfs" not in os.listdir(m.mnt)
    assert os.listdir(m.path(".agentbayfs")) == ["status"]
    first = subprocess.run(["cat", m.path(".agentbayfs/status")], stdout=subprocess.PIPE,
                           check=True, timeout=10).stdout.decode()
    lines = first.splitlines()
    assert lines[0] == "1 running, 1 waiting (at most 1 at once, local backend)", first
    assert lines[1].split() == ["STATE", "ELAPSED", "RUN", "SCRIPT"], first
    assert lines[2].split()[0] == "running" and lines[2].split()[3] == "/slow.py", first
    assert lines[3].split()[0] == "queued" and lines[3].split()[3] == "/next.py", first
    assert lines[4].split()[0] == "failed" and "/done.py" in lines[4] and "KeyError" in lines[4], first
    time.sleep(1.1)
    again = m.read(".agentbayfs/status").splitlines()
    t0 = float(lines[2].split()[1].rstrip("s"))
    t1 = float(again[2].split()[1].rstrip("s"))
    assert t1 >= t0 + 1.0, (lines[2], again[2])
    with pytest.raises(OSError) as e:
        open(m.path(".agentbayfs/status"), "w")
    assert e.value.errno == errno.EACCES
    with pytest.raises(OSError):
        open(m.path(".agentbayfs/other"))
    os.unlink(m.path("slow.py"))
    m.wait_run("next", 1)


def test_snapshot_reads_race_their_close(mount):
    """Readers of the overview, .status and .error opening, reading and
    closing as fast as they can from several threads: each gets the whole
    text. (The kernel can send the release of a handle while our reply to
    its last read is still inside writev; under a sanitizer the daemon died
    of that when the reply came from the handle's own buffer.)"""
    m = mount(opts=["warm=0"])
    m.save_and_wait("a.py", "raise ValueError('v')\n")
    want = {name: m.read(name) for name in (".agentbayfs/status", "a.status", "a.error")}
    errors = []

    def reader(name):
        try:
            for _ in range(150):
                with open(m.path(name), "rb") as f:
                    got = f.read().decode()
                if name != ".agentbayfs/status" and got != want[name]:
                    errors.append((name, got))
                    return
                if name == ".agentbayfs/status" and not got.startswith("0 running"):
                    errors.append((name, got))
                    return
        except OSError as e:
            errors.append((name, e))

    threads = [threading.Thread(target=reader, args=(name,)) for name in want for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert errors == []

"""Per-script settings as extended attributes (user.agentbay.*): a timeout
and a language that apply to the script's runs and survive a remount, a
read-only state, and a rerun without editing; the user namespace of stored
files passes through to the store; result files have none."""

import errno
import os
import shutil
import subprocess

import pytest

SLOW = "import time\ntime.sleep(3)\nprint('done')\n"


def xattrs(path):
    return {k: os.getxattr(path, k) for k in os.listxattr(path)}


def test_timeout_setting_applies_and_survives_remount(mount):
    """user.agentbay.timeout=1 stops a script that sleeps 3 s (timed_out)
    while the mount's limit is 60 s; the value is checked (bad ones give
    EINVAL), shown normalized, and still there after a remount."""
    m = mount(opts=["warm=0"])
    m.write("slow.py", "print('first')\n")
    m.wait_run("slow", 1)
    path = m.path("slow.py")
    for bad in (b"soon", b"0", b"", b"1\x002"):
        with pytest.raises(OSError) as e:
            os.setxattr(path, "user.agentbay.timeout", bad)
        assert e.value.errno == errno.EINVAL, bad
    os.setxattr(path, "user.agentbay.timeout", b"1s\n")
    assert os.getxattr(path, "user.agentbay.timeout") == b"1"
    st = m.save_and_wait("slow.py", SLOW)
    assert st["state"] == "timed_out", st
    m2 = m.remount()
    assert os.getxattr(m2.path("slow.py"), "user.agentbay.timeout") == b"1"
    st = m2.save_and_wait("slow.py", SLOW)
    assert st["state"] == "timed_out", st
    os.removexattr(m2.path("slow.py"), "user.agentbay.timeout")
    st = m2.save_and_wait("slow.py", SLOW)
    assert st["state"] == "succeeded", st


def test_language_setting_overrides_the_extension(mount):
    """user.agentbay.language=javascript runs x.py as JavaScript (and the
    status says so); python, py, js and node are accepted, others refused."""
    m = mount(opts=["warm=0"])
    m.write("x.py", "print('as python')\n")
    m.wait_run("x", 1)
    path = m.path("x.py")
    with pytest.raises(OSError) as e:
        os.setxattr(path, "user.agentbay.language", b"ruby")
    assert e.value.errno == errno.EINVAL
    os.setxattr(path, "user.agentbay.language", b"js")
    assert os.getxattr(path, "user.agentbay.language") == b"javascript"
    st = m.save_and_wait("x.py", "console.log(typeof process)\n")
    assert st["language"] == "javascript" and st["state"] == "succeeded", st
    assert m.read("x.out") == "object\n"
    os.setxattr(path, "user.agentbay.language", b"python")
    st = m.save_and_wait("x.py", "print('py again')\n")
    assert st["language"] == "python" and m.read("x.out") == "py again\n", st


def test_state_is_read_only_and_run_reruns(mount):
    """user.agentbay.state shows the last run's state and cannot be set;
    setting user.agentbay.run (any value) runs the script again without
    editing it: the run count goes up and the results are the new run's as
    soon as setxattr has returned."""
    m = mount(opts=["warm=0"])
    m.write("c.py", "import random\nprint(random.random())\n")
    st = m.wait_run("c", 1)
    path = m.path("c.py")
    assert os.getxattr(path, "user.agentbay.state") == st["state"].encode()
    with pytest.raises(OSError) as e:
        os.setxattr(path, "user.agentbay.state", b"failed")
    assert e.value.errno == errno.EPERM
    first = m.read("c.out")
    os.setxattr(path, "user.agentbay.run", b"1")
    st = m.status("c")
    assert st["run"] == 2, st
    st = m.wait_run("c", 2)
    assert st["state"] == "succeeded" and m.read("c.out") != first
    assert "user.agentbay.state" in os.listxattr(path)
    assert "user.agentbay.run" not in os.listxattr(path)
    with open(path) as f:
        assert f.read() == "import random\nprint(random.random())\n"
    # Not a script: nothing to rerun.
    m.write("notes.txt", "x")
    with pytest.raises(OSError) as e:
        os.setxattr(m.path("notes.txt"), "user.agentbay.run", b"1")
    assert e.value.errno == errno.EINVAL


def test_user_xattrs_pass_through_and_results_have_none(mount):
    """Other user.* attributes of stored files and directories are the
    store's; results have no attributes and refuse them; other namespaces
    are not offered; getfattr -d shows a script's settings and state."""
    m = mount(opts=["warm=0"])
    m.write("d.py", "print(1)\n")
    m.wait_run("d", 1)
    os.setxattr(m.path("d.py"), "user.tag", b"blue")
    assert os.getxattr(m.store_path("d.py"), "user.tag") == b"blue"
    os.mkdir(m.path("sub"))
    os.setxattr(m.path("sub"), "user.tag", b"dir")
    assert os.getxattr(m.store_path("sub"), "user.tag") == b"dir"
    assert os.listxattr(m.path("d.out")) == []
    with pytest.raises(OSError) as e:
        os.setxattr(m.path("d.out"), "user.tag", b"x")
    assert e.value.errno == errno.EACCES
    with pytest.raises(OSError) as e:
        os.setxattr(m.path("d.py"), "trusted.x", b"x")
    assert e.value.errno in (errno.EOPNOTSUPP, errno.EPERM)
    with pytest.raises(OSError) as e:
        os.setxattr(m.path("d.py"), "user.agentbay.colour", b"x")
    assert e.value.errno == errno.EINVAL
    os.setxattr(m.path("d.py"), "user.agentbay.timeout", b"5m")
    got = xattrs(m.path("d.py"))
    assert got == {"user.tag": b"blue", "user.agentbay.timeout": b"300",
                   "user.agentbay.state": b"succeeded"}, got
    if not shutil.which("getfattr"):
        pytest.fail("getfattr is missing (install attr: scripts/install-deps --test does)")
    r = subprocess.run(["getfattr", "-d", m.path("d.py")], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    assert 'user.agentbay.timeout="300"' in r.stdout and 'user.agentbay.state="succeeded"' in r.stdout, r.stdout

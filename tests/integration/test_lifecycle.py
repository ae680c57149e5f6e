"""Mounting, unmounting, crashes, command line, and ordinary file semantics."""

import ctypes
import errno
import os
import re
import signal
import stat
import subprocess
import time

import pytest

from conftest import is_mounted, lazy_unmount, run_binary


# ----------------------------------------------------------------------------
# Persistence and shutdown
# ----------------------------------------------------------------------------

def test_files_and_results_survive_remount(fs):
    """Files, scripts and results are all there after unmount + remount, and nothing reruns."""
    fs.write("data.txt", "plain data\n")
    os.mkdir(fs.path("sub"))
    st = fs.save_and_wait("a.py", "import sys\nprint('persist')\nprint('e', file=sys.stderr)\n")
    assert st["state"] == "succeeded"
    fs.save_and_wait("sub/b.js", "console.log('sub persist');\n")
    fs.allow_log("ZeroDivisionError")
    fs.save_and_wait("bad.py", "1/0\n")
    before = {stem: fs.status(stem) for stem in ("a", "sub/b", "bad")}

    fs = fs.remount()
    with open(fs.store_path("data.txt")) as f:
        assert f.read() == "plain data\n"
    assert fs.read("data.txt") == "plain data\n"
    assert fs.read("a.py") == "import sys\nprint('persist')\nprint('e', file=sys.stderr)\n"
    assert fs.read("a.out") == "persist\n"
    assert fs.read("a.err") == "e\n"
    assert fs.read("a.error") == ""
    assert fs.read("sub/b.out") == "sub persist\n"
    assert fs.read("bad.error").startswith("ZeroDivisionError: division by zero")
    time.sleep(0.5)
    for stem, old in before.items():
        assert fs.status(stem) == old, "status of %s changed across remount" % stem
    # The run counter continues from where it was.
    st = fs.save_and_wait("a.py", "print('after remount')\n")
    assert st["run"] == 2, st
    assert fs.read("a.out") == "after remount\n"


def test_kill9_mid_run_then_remount_says_interrupted(mount):
    """kill -9 of the daemon during a run; after remount the run's state is interrupted."""
    fs = mount()
    script = "import time\nprint('started', flush=True)\ntime.sleep(30)\n"
    fs.write("slow.py", script)
    fs.wait_state("slow", "running", timeout=15)
    fs.kill9()
    r = subprocess.run(["fusermount3", "-u", "-z", fs.mnt], timeout=10,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert r.returncode == 0, r.stdout
    assert not is_mounted(fs.mnt)
    with open(fs.store_path("slow.py")) as f:
        assert f.read() == script

    fs2 = mount(store=fs.store, mnt=fs.mnt)
    fs2.allow_log("interrupt")
    st = fs2.status("slow")
    assert st["state"] == "interrupted", st
    assert st["run"] == 1 and st["script"] == "slow.py", st
    assert fs2.read("slow.py") == script
    # Reading results of an interrupted run does not block.
    fs2.read("slow.out", timeout=5)
    fs2.read("slow.error", timeout=5)
    # It is not rerun on its own.
    time.sleep(0.5)
    assert fs2.status("slow")["state"] == "interrupted"
    assert fs2.status("slow")["run"] == 1


def test_unmount_during_run(mount):
    """fusermount3 -u while a run is in flight: the daemon exits 0 within 10 s."""
    fs = mount()
    fs.write("slow.py", "import time\nprint('x', flush=True)\ntime.sleep(30)\n")
    fs.wait_state("slow", "running", timeout=15)
    t0 = time.monotonic()
    r = subprocess.run(["fusermount3", "-u", fs.mnt], timeout=10,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert r.returncode == 0, r.stdout
    fs.unmounted = True
    rc = fs.proc.wait(timeout=10)
    assert rc == 0, fs.log_tail()
    assert time.monotonic() - t0 < 10
    assert not is_mounted(fs.mnt)
    # The cut run is recorded as such, not as a success nor as still running.
    fs2 = mount(store=fs.store, mnt=fs.mnt)
    fs2.allow_log("cancel|interrupt")
    st = fs2.status("slow")
    assert st["state"] in ("cancelled", "interrupted"), st


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_unmounts_cleanly(mount, sig):
    """SIGTERM / SIGINT to the daemon unmounts and exits 0."""
    fs = mount()
    fs.save_and_wait("a.py", "print(1)\n")
    fs.proc.send_signal(sig)
    rc = fs.proc.wait(timeout=10)
    fs.unmounted = True
    assert rc == 0, fs.log_tail()
    deadline = time.monotonic() + 5
    while is_mounted(fs.mnt) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not is_mounted(fs.mnt)
    fs2 = mount(store=fs.store, mnt=fs.mnt)
    assert fs2.read("a.out") == "1\n"


def test_signal_answers_waiting_readers_then_exits(mount):
    """SIGTERM with a reader parked on a running script's .out and a select()
    on its .err: the reader gets ENOTCONN at once, the daemon exits 0, and no
    reply or wake-up goes to the closed FUSE descriptor (no "writing device"
    line, clean under TSan)."""
    fs = mount()
    fs.write("slow.py", "import time\nprint('a', flush=True)\ntime.sleep(60)\n")
    fs.wait_for_status("slow", lambda s: s["state"] == "running" and s["stdout_bytes"] >= 2,
                       timeout=15, what="running with output")
    prog = ("import errno, os, select, sys, threading\n"
            "err = os.open(sys.argv[2], os.O_RDONLY)\n"
            "threading.Thread(target=select.select, args=([err], [], [], 30), daemon=True).start()\n"
            "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
            "assert os.read(fd, 100) == b'a\\n'\n"
            "print('parked', flush=True)\n"
            "try:\n"
            "    os.read(fd, 100)\n"
            "    print('no error')\n"
            "except OSError as e:\n"
            "    print(errno.errorcode[e.errno])\n")
    reader = subprocess.Popen(["/usr/bin/python3", "-c", prog, fs.path("slow.out"),
                               fs.path("slow.err")], stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline() == "parked\n"
        time.sleep(0.3)
        fs.allow_log("cancel|interrupt|stopp")
        fs.proc.send_signal(signal.SIGTERM)
        out, _ = reader.communicate(timeout=20)
        rc = fs.proc.wait(timeout=20)
        fs.unmounted = True
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.communicate()
    assert out == "ENOTCONN\n", out
    assert rc == 0, fs.log_tail()
    assert "writing device" not in fs.log_text(), fs.log_tail()


# ----------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------

def test_unknown_option(bin_path, tmp_path):
    """An unknown -o option: non-zero exit and a message naming it."""
    (tmp_path / "mnt").mkdir()
    (tmp_path / "store").mkdir()
    mnt = str(tmp_path / "mnt")
    rc, out, err = run_binary(["-f", "-o", "store=%s,bogus=1" % (tmp_path / "store"), mnt], mnt=mnt)
    assert rc not in (0, None), (rc, out, err)
    assert "bogus" in err, err


def test_bad_option_values(bin_path, tmp_path):
    """Bad values of our own options are refused with a non-zero exit and a message."""
    (tmp_path / "mnt").mkdir()
    (tmp_path / "store").mkdir()
    mnt = str(tmp_path / "mnt")
    for bad in ("timeout=abc", "max_output=lots", "backend=nosuchbackend", "sandbox=maybe",
                "jobs=abc"):
        rc, out, err = run_binary(["-f", "-o", "store=%s,%s" % (tmp_path / "store", bad), mnt],
                                  mnt=mnt)
        assert rc not in (0, None), (bad, rc, out, err)
        assert err.strip(), bad
        assert bad.split("=")[0] in err, (bad, err)


def test_missing_mountpoint(bin_path, tmp_path):
    """A mountpoint that does not exist: non-zero exit with a clear message."""
    (tmp_path / "store").mkdir()
    mnt = str(tmp_path / "does-not-exist")
    rc, out, err = run_binary(["-f", "-o", "store=%s" % (tmp_path / "store"), mnt], mnt=mnt)
    assert rc not in (0, None), (rc, out, err)
    assert err.strip(), "no message on stderr"
    assert "does-not-exist" in err or "mountpoint" in err.lower() or \
        "no such file" in err.lower(), err


def test_no_mountpoint_argument(bin_path, tmp_path):
    """No mountpoint at all: non-zero exit with a message."""
    (tmp_path / "store").mkdir()
    rc, out, err = run_binary(["-f", "-o", "store=%s" % (tmp_path / "store")])
    assert rc not in (0, None), (rc, out, err)
    assert err.strip()


def test_version(bin_path):
    """--version prints a version number and exits 0."""
    rc, out, err = run_binary(["--version"])
    assert rc == 0, (out, err)
    assert re.search(r"\d+\.\d+", out + err), (out, err)
    assert "agentbayfs" in (out + err).lower()


def test_help(bin_path):
    """--help exits 0 and documents store= and the other options."""
    rc, out, err = run_binary(["--help"])
    assert rc == 0, (out, err)
    text = out + err
    for opt in ("store=", "timeout=", "max_output=", "sandbox=", "jobs="):
        assert opt in text, "--help does not mention %s:\n%s" % (opt, text)


def test_store_is_a_file(bin_path, tmp_path):
    """A store that is a regular file: non-zero exit, clear message, nothing mounted."""
    (tmp_path / "mnt").mkdir()
    store = tmp_path / "store-file"
    store.write_text("not a directory\n")
    mnt = str(tmp_path / "mnt")
    rc, out, err = run_binary(["-f", "-o", "store=%s" % store, mnt], mnt=mnt)
    assert rc not in (0, None), (rc, out, err)
    assert "store" in err.lower() or str(store) in err, err
    assert not is_mounted(mnt)


def test_background_mode(bin_path, tmp_path):
    """Without -f the daemon detaches, the mount works, and fusermount3 -u stops it."""
    if not os.path.exists("/dev/fuse"):
        pytest.skip("/dev/fuse is missing")
    (tmp_path / "mnt").mkdir()
    (tmp_path / "store").mkdir()
    mnt = str(tmp_path / "mnt")
    try:
        r = subprocess.run([bin_path, "-o", "store=%s" % (tmp_path / "store"), mnt],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True, timeout=15)
        assert r.returncode == 0, r.stderr
        assert is_mounted(mnt)
        with open(os.path.join(mnt, "a.txt"), "w") as f:
            f.write("bg")
        assert (tmp_path / "store" / "a.txt").read_text() == "bg"
        r = subprocess.run(["fusermount3", "-u", mnt], timeout=10)
        assert r.returncode == 0
    finally:
        lazy_unmount(mnt)


# ----------------------------------------------------------------------------
# Ordinary file semantics (non-scripts), reaching the store
# ----------------------------------------------------------------------------

def store_text(fs, name):
    with open(fs.store_path(name)) as f:
        return f.read()


def test_create_read_write_append_truncate(fs):
    """create/write/read/append/truncate of plain files work and reach the store."""
    fs.write("f.txt", "hello")
    assert store_text(fs, "f.txt") == "hello"
    assert fs.read("f.txt") == "hello"
    with open(fs.path("f.txt"), "a") as f:
        f.write(" world")
    assert store_text(fs, "f.txt") == "hello world"
    assert os.stat(fs.path("f.txt")).st_size == 11
    with open(fs.path("f.txt"), "r+") as f:
        f.seek(6)
        f.write("WORLD")
        f.seek(0)
        assert f.read() == "hello WORLD"
    assert store_text(fs, "f.txt") == "hello WORLD"
    os.truncate(fs.path("f.txt"), 5)
    assert store_text(fs, "f.txt") == "hello"
    with open(fs.path("f.txt"), "r+") as f:
        f.truncate(2)
    assert fs.read("f.txt") == "he"
    assert os.stat(fs.path("f.txt")).st_size == 2
    with open(fs.path("f.txt"), "w"):
        pass
    assert store_text(fs, "f.txt") == ""
    # Exclusive create, and a larger binary file with a hole.
    fd = os.open(fs.path("x.bin"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    os.pwrite(fd, b"\xff" * 3, 1 << 20)
    os.close(fd)
    with pytest.raises(FileExistsError):
        os.open(fs.path("x.bin"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    data = fs.read_bytes("x.bin")
    assert len(data) == (1 << 20) + 3 and data[:10] == b"\0" * 10 and data[-3:] == b"\xff" * 3
    assert os.path.getsize(fs.store_path("x.bin")) == (1 << 20) + 3
    big = os.urandom(3 * 1024 * 1024 + 17)
    fs.write("big.dat", big)
    assert fs.read_bytes("big.dat") == big
    with open(fs.store_path("big.dat"), "rb") as f:
        assert f.read() == big
    assert fs.status_files() == []


def renameat2(old, new, flags):
    libc = ctypes.CDLL(None, use_errno=True)
    fn = libc.renameat2
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    AT_FDCWD = -100
    if fn(AT_FDCWD, os.fsencode(old), AT_FDCWD, os.fsencode(new), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), old, None, new)


RENAME_NOREPLACE = 1


def test_rename_and_noreplace(fs):
    """rename moves/replaces files in the store; RENAME_NOREPLACE refuses an existing target."""
    fs.write("a.txt", "A")
    fs.write("b.txt", "B")
    os.rename(fs.path("a.txt"), fs.path("c.txt"))
    assert not os.path.exists(fs.path("a.txt")) and not os.path.exists(fs.store_path("a.txt"))
    assert store_text(fs, "c.txt") == "A"
    os.rename(fs.path("c.txt"), fs.path("b.txt"))  # replaces b.txt
    assert store_text(fs, "b.txt") == "A"
    assert sorted(fs.listdir()) == ["b.txt"]
    fs.write("d.txt", "D")
    with pytest.raises(FileExistsError):
        renameat2(fs.path("d.txt"), fs.path("b.txt"), RENAME_NOREPLACE)
    assert store_text(fs, "b.txt") == "A" and store_text(fs, "d.txt") == "D"
    renameat2(fs.path("d.txt"), fs.path("e.txt"), RENAME_NOREPLACE)
    assert store_text(fs, "e.txt") == "D"
    assert not os.path.exists(fs.path("d.txt"))
    # Across directories, and a directory itself.
    os.mkdir(fs.path("dir"))
    os.rename(fs.path("e.txt"), fs.path("dir/e2.txt"))
    assert store_text(fs, "dir/e2.txt") == "D"
    os.rename(fs.path("dir"), fs.path("dir2"))
    assert fs.read("dir2/e2.txt") == "D"
    assert os.path.isdir(fs.store_path("dir2")) and not os.path.exists(fs.store_path("dir"))


def test_rename_noreplace_onto_script(fs):
    """RENAME_NOREPLACE onto an existing script fails and does not run anything."""
    fs.save_and_wait("s.py", "print('orig')\n")
    fs.write("new.txt", "print('other')\n")
    with pytest.raises(FileExistsError):
        renameat2(fs.path("new.txt"), fs.path("s.py"), RENAME_NOREPLACE)
    fs.assert_runs("s", 1)
    assert fs.read("s.out") == "orig\n"


def test_unlink_mkdir_rmdir(fs):
    """unlink, mkdir, rmdir (and ENOTEMPTY) work and reach the store."""
    os.mkdir(fs.path("d"))
    assert os.path.isdir(fs.store_path("d"))
    os.makedirs(fs.path("d/e/f"))
    fs.write("d/e/f/g.txt", "g")
    assert store_text(fs, "d/e/f/g.txt") == "g"
    with pytest.raises(OSError) as ei:
        os.rmdir(fs.path("d/e/f"))
    assert ei.value.errno == errno.ENOTEMPTY
    with pytest.raises(FileExistsError):
        os.mkdir(fs.path("d"))
    os.unlink(fs.path("d/e/f/g.txt"))
    assert not os.path.exists(fs.store_path("d/e/f/g.txt"))
    with pytest.raises(FileNotFoundError):
        os.unlink(fs.path("d/e/f/g.txt"))
    os.rmdir(fs.path("d/e/f"))
    os.rmdir(fs.path("d/e"))
    os.rmdir(fs.path("d"))
    assert not os.path.exists(fs.store_path("d"))
    assert fs.listdir() == []
    with pytest.raises(FileNotFoundError):
        os.stat(fs.path("nothing"))


def test_rmdir_of_dir_with_script_results(fs):
    """A directory holding a script can be emptied and removed (results go with the script)."""
    os.mkdir(fs.path("d"))
    fs.save_and_wait("d/a.py", "print(1)\n")
    os.unlink(fs.path("d/a.py"))
    assert fs.listdir("d") == []
    os.rmdir(fs.path("d"))
    assert not os.path.exists(fs.path("d"))


def test_chmod_and_utime(fs):
    """chmod and utime change the file in the mount and in the store."""
    fs.write("m.txt", "mode")
    os.chmod(fs.path("m.txt"), 0o600)
    assert stat.S_IMODE(os.stat(fs.path("m.txt")).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(fs.store_path("m.txt")).st_mode) == 0o600
    os.chmod(fs.path("m.txt"), 0o751)
    assert stat.S_IMODE(os.stat(fs.path("m.txt")).st_mode) == 0o751
    assert stat.S_IMODE(os.stat(fs.store_path("m.txt")).st_mode) == 0o751
    os.utime(fs.path("m.txt"), ns=(1_000_000_000_123_000_000, 1_100_000_000_456_000_000))
    st = os.stat(fs.path("m.txt"))
    assert st.st_mtime_ns == 1_100_000_000_456_000_000
    assert st.st_atime_ns == 1_000_000_000_123_000_000
    assert os.stat(fs.store_path("m.txt")).st_mtime_ns == 1_100_000_000_456_000_000
    assert fs.read("m.txt") == "mode"
    # Directories too.
    os.mkdir(fs.path("dd"))
    os.chmod(fs.path("dd"), 0o700)
    assert stat.S_IMODE(os.stat(fs.store_path("dd")).st_mode) == 0o700


def test_statvfs_and_fsync(fs):
    """statvfs of the mount answers; fsync/fdatasync of a written file succeed."""
    sv = os.statvfs(fs.mnt)
    assert sv.f_bsize > 0 and sv.f_blocks > 0 and sv.f_namemax > 0
    fd = os.open(fs.path("sync.txt"), os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.write(fd, b"synced")
        os.fsync(fd)
        os.fdatasync(fd)
    finally:
        os.close(fd)
    assert store_text(fs, "sync.txt") == "synced"
    dfd = os.open(fs.mnt, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def test_listing_and_stat(fs):
    """readdir lists exactly the user's files; stat reports types and sizes."""
    fs.write("one.txt", "1")
    fs.write("two.txt", "22")
    os.mkdir(fs.path("three"))
    assert fs.listdir() == ["one.txt", "three", "two.txt"]
    assert os.stat(fs.path("two.txt")).st_size == 2
    assert stat.S_ISREG(os.stat(fs.path("one.txt")).st_mode)
    assert stat.S_ISDIR(os.stat(fs.path("three")).st_mode)
    r = subprocess.run(["ls", "-la", fs.mnt], stdout=subprocess.PIPE, text=True, timeout=10)
    assert r.returncode == 0
    assert "one.txt" in r.stdout and "two.txt" in r.stdout

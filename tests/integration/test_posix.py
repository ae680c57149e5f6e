"""The non-script part of the mount behaves like a normal file system: open
flags, rename rules, unlink of open files, permissions, links, sparse and
large files, sync, statvfs, directories, truncate."""

import ctypes
import errno
import mmap
import os
import stat
import subprocess
import time

import pytest

from conftest import WRITE_MODES, writebehind_helpers

AT_FDCWD = -100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2


def renameat2(old, new, flags):
    libc = ctypes.CDLL(None, use_errno=True)
    fn = libc.renameat2
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    if fn(AT_FDCWD, os.fsencode(old), AT_FDCWD, os.fsencode(new), flags) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), old, None, new)


def expect_errno(errs, func, *args, **kwargs):
    """FUNC(*ARGS) fails with one of ERRS (an errno or a tuple of them)."""
    errs = errs if isinstance(errs, tuple) else (errs,)
    with pytest.raises(OSError) as ei:
        func(*args, **kwargs)
    assert ei.value.errno in errs, "%s%r: expected %s, got %s" % (
        func.__name__, args, "/".join(errno.errorcode[e] for e in errs),
        errno.errorcode.get(ei.value.errno, ei.value.errno))


def store_bytes(fs, name):
    with open(fs.store_path(name), "rb") as f:
        return f.read()


# ----------------------------------------------------------------------------
# open(2) flags
# ----------------------------------------------------------------------------

def test_open_flags(fs):
    """O_EXCL, O_APPEND, O_TRUNC, access modes and O_DIRECTORY give the usual
    results and errors."""
    p = fs.path
    fs.write("f.txt", "hello")
    os.mkdir(p("d"))
    expect_errno(errno.EEXIST, os.open, p("f.txt"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    expect_errno(errno.EEXIST, os.open, p("d"), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    expect_errno(errno.ENOENT, os.open, p("nope.txt"), os.O_RDONLY)
    expect_errno(errno.ENOTDIR, os.open, p("f.txt"), os.O_RDONLY | os.O_DIRECTORY)
    expect_errno(errno.ENOTDIR, os.open, p("f.txt/x"), os.O_RDONLY)
    expect_errno(errno.EISDIR, os.open, p("d"), os.O_WRONLY)
    assert store_bytes(fs, "f.txt") == b"hello"

    # Two O_APPEND writers interleave at the end of the file.
    a = os.open(p("f.txt"), os.O_WRONLY | os.O_APPEND)
    b = os.open(p("f.txt"), os.O_WRONLY | os.O_APPEND)
    try:
        os.write(a, b" A")
        os.write(b, b" B")
        os.pwrite(a, b" C", 0)  # Linux appends even with an offset under O_APPEND
        os.write(a, b" D")
    finally:
        os.close(a)
        os.close(b)
    assert fs.read_bytes("f.txt") == b"hello A B C D"
    assert store_bytes(fs, "f.txt") == b"hello A B C D"

    fd = os.open(p("f.txt"), os.O_RDONLY)
    try:
        expect_errno(errno.EBADF, os.write, fd, b"x")
    finally:
        os.close(fd)
    fd = os.open(p("f.txt"), os.O_WRONLY)
    try:
        expect_errno(errno.EBADF, os.read, fd, 1)
        os.write(fd, b"J")  # overwrites in place, no truncation
    finally:
        os.close(fd)
    assert fs.read_bytes("f.txt") == b"Jello A B C D"

    fd = os.open(p("f.txt"), os.O_RDWR | os.O_TRUNC)
    try:
        assert os.fstat(fd).st_size == 0
        assert os.read(fd, 10) == b""
        os.write(fd, b"new")
    finally:
        os.close(fd)
    assert fs.read_bytes("f.txt") == b"new" and store_bytes(fs, "f.txt") == b"new"

    fd = os.open(p("d"), os.O_RDONLY | os.O_DIRECTORY)
    os.close(fd)
    assert fs.status_files() == []


# ----------------------------------------------------------------------------
# rename(2)
# ----------------------------------------------------------------------------

def test_rename_rules(fs):
    """rename over a file and over an empty directory works; a file over a
    directory, a directory over a file or a non-empty directory, and a
    directory into itself fail with the usual errors."""
    p = fs.path
    fs.write("a.txt", "A")
    fs.write("b.txt", "B")
    os.rename(p("a.txt"), p("b.txt"))
    assert fs.listdir() == ["b.txt"] and fs.read("b.txt") == "A" and store_bytes(fs, "b.txt") == b"A"

    os.mkdir(p("empty"))
    os.mkdir(p("full"))
    fs.write("full/x.txt", "x")
    os.mkdir(p("src"))
    fs.write("src/y.txt", "y")
    expect_errno(errno.EISDIR, os.rename, p("b.txt"), p("empty"))
    expect_errno(errno.ENOTDIR, os.rename, p("src"), p("b.txt"))
    expect_errno((errno.ENOTEMPTY, errno.EEXIST), os.rename, p("src"), p("full"))
    expect_errno(errno.EINVAL, os.rename, p("src"), p("src/inside"))
    assert fs.read("full/x.txt") == "x" and fs.read("src/y.txt") == "y"
    os.rename(p("src"), p("empty"))
    assert fs.listdir() == ["b.txt", "empty", "full"]
    assert fs.read("empty/y.txt") == "y" and store_bytes(fs, "empty/y.txt") == b"y"
    assert not os.path.exists(fs.store_path("src"))
    expect_errno(errno.ENOENT, os.rename, p("missing"), p("other"))


def test_rename_noreplace_and_exchange(fs):
    """renameat2 RENAME_NOREPLACE refuses an existing target (EEXIST);
    RENAME_EXCHANGE swaps two files, and a file with a directory."""
    p = fs.path
    fs.write("one.txt", "1")
    fs.write("two.txt", "2")
    expect_errno(errno.EEXIST, renameat2, p("one.txt"), p("two.txt"), RENAME_NOREPLACE)
    assert fs.read("one.txt") == "1" and fs.read("two.txt") == "2"
    renameat2(p("one.txt"), p("two.txt"), RENAME_EXCHANGE)
    assert fs.read("one.txt") == "2" and fs.read("two.txt") == "1"
    assert store_bytes(fs, "one.txt") == b"2" and store_bytes(fs, "two.txt") == b"1"
    expect_errno(errno.ENOENT, renameat2, p("one.txt"), p("three.txt"), RENAME_EXCHANGE)
    os.mkdir(p("dir"))
    fs.write("dir/in.txt", "in")
    renameat2(p("one.txt"), p("dir"), RENAME_EXCHANGE)
    assert os.path.isdir(p("one.txt")) and fs.read("one.txt/in.txt") == "in"
    assert os.path.isfile(p("dir")) and fs.read("dir") == "2"
    assert fs.status_files() == []


def test_rename_exchange_with_a_script_runs_it(fs):
    """RENAME_EXCHANGE of a script and a text file is a save of the script name
    (its new content runs once); the text file keeps the old code."""
    fs.save_and_wait("s.py", "print('old')\n")
    fs.write("t.txt", "print('swapped in')\n")
    renameat2(fs.path("s.py"), fs.path("t.txt"), RENAME_EXCHANGE)
    st = fs.wait_run("s", 2)
    assert st["state"] == "succeeded" and fs.read("s.out") == "swapped in\n", st
    assert fs.read("t.txt") == "print('old')\n"
    fs.assert_runs("s", 2)


def test_rename_dir_over_dir_emptied_of_scripts(fs):
    """A directory whose scripts were deleted looks empty, and a directory can
    be renamed over it like over any empty directory."""
    # Was a bug, fixed: the store copy of "was" still holds the hidden .agentbayfs folder,
    # so rename() fails with ENOTEMPTY although `ls -A was` is empty (rmdir
    # works: it drops the empty meta folder first, rename does not).
    os.mkdir(fs.path("was"))
    fs.save_and_wait("was/a.py", "print(1)\n")
    os.unlink(fs.path("was/a.py"))
    assert fs.listdir("was") == []
    os.mkdir(fs.path("new"))
    fs.write("new/n.txt", "n")
    os.rename(fs.path("new"), fs.path("was"))
    assert fs.listdir() == ["was"] and fs.read("was/n.txt") == "n"


def test_replace_script_onto_itself(fs):
    """os.replace of a script onto its own name succeeds and changes nothing:
    no new run, same content and results."""
    st = fs.save_and_wait("same.py", "print('once')\n")
    os.replace(fs.path("same.py"), fs.path("same.py"))
    fs.assert_runs("same", 1, settle=0.6)
    assert fs.status("same") == st
    assert fs.read("same.py") == "print('once')\n" and fs.read("same.out") == "once\n"
    fs.write("plain.txt", "p")
    os.replace(fs.path("plain.txt"), fs.path("plain.txt"))
    assert fs.read("plain.txt") == "p"


# ----------------------------------------------------------------------------
# unlink, permissions, links
# ----------------------------------------------------------------------------

def test_unlink_of_an_open_file(fs):
    """After unlink, an open fd still reads (and writes) the data; the name is
    gone from the mount and the store."""
    fs.write("gone.txt", "still here")
    fd = os.open(fs.path("gone.txt"), os.O_RDWR)
    try:
        os.unlink(fs.path("gone.txt"))
        assert not os.path.exists(fs.path("gone.txt"))
        assert not os.path.exists(fs.store_path("gone.txt"))
        assert "gone.txt" not in fs.listdir()
        assert os.pread(fd, 100, 0) == b"still here"
        assert os.fstat(fd).st_size == 10
        os.pwrite(fd, b"!", 10)
        assert os.pread(fd, 100, 0) == b"still here!"
    finally:
        os.close(fd)
    fs.write("gone.txt", "new")
    assert fs.read("gone.txt") == "new"


def test_permissions_round_trip(fs):
    """chmod bits (setuid, setgid, sticky included) round-trip; a mode 000 file
    still opens for root; chown to another uid/gid and utime round-trip."""
    p = fs.path
    fs.write("m.txt", "mode")
    for mode in (0o000, 0o644, 0o600, 0o755, 0o4755, 0o2750, 0o777):
        os.chmod(p("m.txt"), mode)
        assert stat.S_IMODE(os.stat(p("m.txt")).st_mode) == mode, oct(mode)
        assert stat.S_IMODE(os.stat(fs.store_path("m.txt")).st_mode) == mode, oct(mode)
    os.chmod(p("m.txt"), 0)
    with open(p("m.txt"), "r+") as f:  # root
        assert f.read() == "mode"
        f.write("!")
    assert store_bytes(fs, "m.txt") == b"mode!"
    os.mkdir(p("d"))
    os.chmod(p("d"), 0o1777)
    assert stat.S_IMODE(os.stat(p("d")).st_mode) == 0o1777
    os.chmod(p("d"), 0)
    fs.write("d/in.txt", "in")
    assert fs.read("d/in.txt") == "in"

    os.chown(p("m.txt"), 12345, 54321)
    st = os.stat(p("m.txt"))
    assert (st.st_uid, st.st_gid) == (12345, 54321)
    st = os.stat(fs.store_path("m.txt"))
    assert (st.st_uid, st.st_gid) == (12345, 54321)
    os.chown(p("m.txt"), -1, 0)
    assert (os.stat(p("m.txt")).st_uid, os.stat(p("m.txt")).st_gid) == (12345, 0)

    os.utime(p("m.txt"), ns=(1_234_567_890_123_456_789, 987_654_321_987_654_321))
    st = os.stat(p("m.txt"))
    assert st.st_atime_ns == 1_234_567_890_123_456_789
    assert st.st_mtime_ns == 987_654_321_987_654_321
    os.utime(p("d"), ns=(5_000_000_000, 6_000_000_000))
    assert os.stat(p("d")).st_mtime_ns == 6_000_000_000
    before = time.time()
    os.utime(p("m.txt"))
    assert os.stat(p("m.txt")).st_mtime >= before - 1
    assert fs.status_files() == []


def test_hard_links_refused(fs):
    """link(2) in the mount fails with EPERM and creates nothing."""
    fs.write("orig.txt", "o")
    expect_errno(errno.EPERM, os.link, fs.path("orig.txt"), fs.path("copy.txt"))
    expect_errno(errno.EPERM, os.link, fs.path("orig.txt"), fs.path("copy.py"))
    assert fs.listdir() == ["orig.txt"]
    assert os.stat(fs.path("orig.txt")).st_nlink == 1


def test_symlinks(fs):
    """symlink, readlink, lstat, following, a dangling link, utime without
    following, and unlink of the link; all reach the store."""
    p = fs.path
    fs.write("target.txt", "target")
    os.mkdir(p("dir"))
    os.symlink("target.txt", p("link"))
    os.symlink("does/not/exist", p("dangling"))
    os.symlink("dir", p("dirlink"))
    os.symlink("/etc/hostname", p("abs"))
    assert os.readlink(p("link")) == "target.txt"
    assert os.readlink(fs.store_path("link")) == "target.txt"
    assert os.readlink(p("dangling")) == "does/not/exist"
    assert os.readlink(p("abs")) == "/etc/hostname"
    assert stat.S_ISLNK(os.lstat(p("link")).st_mode)
    assert os.lstat(p("link")).st_size == len("target.txt")
    assert stat.S_ISREG(os.stat(p("link")).st_mode)
    assert fs.read("link") == "target"
    assert os.path.lexists(p("dangling")) and not os.path.exists(p("dangling"))
    expect_errno(errno.ENOENT, os.open, p("dangling"), os.O_RDONLY)
    expect_errno(errno.EEXIST, os.symlink, "x", p("link"))
    expect_errno(errno.EINVAL, os.readlink, p("target.txt"))
    fs.write("dirlink/via.txt", "via")
    assert fs.read("dir/via.txt") == "via"
    os.utime(p("link"), ns=(3_000_000_000, 4_000_000_000), follow_symlinks=False)
    assert os.lstat(p("link")).st_mtime_ns == 4_000_000_000
    assert os.stat(p("target.txt")).st_mtime_ns != 4_000_000_000
    os.unlink(p("link"))
    assert fs.read("target.txt") == "target"
    assert sorted(fs.listdir()) == ["abs", "dangling", "dir", "dirlink", "target.txt"]


def test_mkfifo(fs):
    """mkfifo in the mount makes a FIFO in the store."""
    os.mkfifo(fs.path("pipe"))
    assert stat.S_ISFIFO(os.lstat(fs.path("pipe")).st_mode)
    assert stat.S_ISFIFO(os.lstat(fs.store_path("pipe")).st_mode)
    os.unlink(fs.path("pipe"))
    assert fs.listdir() == []


# ----------------------------------------------------------------------------
# Sizes: sparse files, > 4 GiB, truncate
# ----------------------------------------------------------------------------

def test_sparse_file(fs):
    """A write far past the end makes a hole: right size, zeros, and the store
    copy is sparse too."""
    fd = os.open(fs.path("sparse.bin"), os.O_CREAT | os.O_RDWR, 0o644)
    try:
        os.write(fd, b"head")
        os.lseek(fd, 10 * 1024 * 1024, os.SEEK_SET)
        os.write(fd, b"tail")
    finally:
        os.close(fd)
    st = os.stat(fs.path("sparse.bin"))
    assert st.st_size == 10 * 1024 * 1024 + 4
    data = fs.read_bytes("sparse.bin")
    assert data[:4] == b"head" and data[-4:] == b"tail"
    assert data[4:-4] == bytes(len(data) - 8)
    assert os.stat(fs.store_path("sparse.bin")).st_blocks * 512 < 1024 * 1024


def test_file_over_4_gib(fs):
    """A sparse file past 4 GiB: size, the byte at 5 GiB, zeros before it, and
    truncate back down, all through the mount."""
    sv = os.statvfs(fs.store)
    if sv.f_bavail * sv.f_frsize < 64 * 1024 * 1024:
        pytest.skip("the store has less than 64 MiB free")
    off = 5 << 30
    fd = os.open(fs.path("huge.bin"), os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            assert os.pwrite(fd, b"Z", off) == 1
        except OSError as e:
            if e.errno == errno.EFBIG:
                pytest.skip("the store's file system does not take files over 4 GiB")
            raise
        assert os.fstat(fd).st_size == off + 1
        assert os.pread(fd, 1, off) == b"Z"
        assert os.pread(fd, 4096, off - 4096) == bytes(4096)
        assert os.pread(fd, 4096, 4 << 30) == bytes(4096)
        assert os.pread(fd, 10, off + 1) == b""
    finally:
        os.close(fd)
    assert os.stat(fs.path("huge.bin")).st_size == off + 1
    assert os.stat(fs.store_path("huge.bin")).st_size == off + 1
    with open(fs.path("huge.bin"), "rb") as f:
        f.seek(off)
        assert f.read() == b"Z"
    os.truncate(fs.path("huge.bin"), (4 << 30) + 3)
    assert os.stat(fs.path("huge.bin")).st_size == (4 << 30) + 3
    os.unlink(fs.path("huge.bin"))


def test_truncate_up_and_down(fs):
    """truncate and ftruncate grow a file with zeros and shrink it."""
    fs.write("t.txt", "0123456789")
    os.truncate(fs.path("t.txt"), 4)
    assert fs.read_bytes("t.txt") == b"0123" and store_bytes(fs, "t.txt") == b"0123"
    os.truncate(fs.path("t.txt"), 8)
    assert fs.read_bytes("t.txt") == b"0123\0\0\0\0"
    fd = os.open(fs.path("t.txt"), os.O_RDWR)
    try:
        os.ftruncate(fd, 2)
        assert os.fstat(fd).st_size == 2 and os.pread(fd, 10, 0) == b"01"
        os.ftruncate(fd, 100000)
        assert os.fstat(fd).st_size == 100000
        assert os.pread(fd, 100000, 0) == b"01" + bytes(99998)
        os.ftruncate(fd, 0)
    finally:
        os.close(fd)
    assert os.stat(fs.path("t.txt")).st_size == 0 and store_bytes(fs, "t.txt") == b""
    expect_errno(errno.EISDIR, os.truncate, fs.mnt, 0)
    assert fs.status_files() == []


def test_shared_mmap_write(fs):
    """Writes through a shared mmap of a stored file reach the mount and the store."""
    fs.write("m.bin", bytes(8192))
    fd = os.open(fs.path("m.bin"), os.O_RDWR)
    try:
        with mmap.mmap(fd, 8192) as m:
            m[0:5] = b"hello"
            m[4096:4101] = b"world"
            m.flush()
    finally:
        os.close(fd)
    data = store_bytes(fs, "m.bin")
    assert data[:5] == b"hello" and data[4096:4101] == b"world" and len(data) == 8192
    assert fs.read_bytes("m.bin") == data


def test_write_only_overwrite_reaches_cached_readers(fs):
    """Write-only opens write around the page cache: an overwrite in place
    (no truncation) through one is seen by a reader that had the old bytes
    cached, through a read-only mapping, and by new opens, during the write
    and after the close; appends and sizes stay right."""
    fs.write("c.bin", b"A" * 100000)
    r = os.open(fs.path("c.bin"), os.O_RDONLY)
    try:
        assert os.pread(r, 100000, 0) == b"A" * 100000
        with mmap.mmap(r, 100000, prot=mmap.PROT_READ) as m:
            assert m[1000:1010] == b"A" * 10
            w = os.open(fs.path("c.bin"), os.O_WRONLY)
            try:
                assert os.pwrite(w, b"B" * 50000, 1000) == 50000
                assert fs.read_bytes("c.bin")[995:1005] == b"AAAAABBBBB"
            finally:
                os.close(w)
            # The old reader's cache is dropped by a notification sent from
            # the daemon's own thread once the writer is released.
            deadline = time.monotonic() + 5
            while os.pread(r, 10, 1000) != b"B" * 10 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert os.pread(r, 12, 999) == b"A" + b"B" * 11
            assert m[50999:51001] == b"BA"
        fd = os.open(fs.path("c.bin"), os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, b"tail")
        finally:
            os.close(fd)
        data = fs.read_bytes("c.bin")
        assert len(data) == 100004 and os.stat(fs.path("c.bin")).st_size == 100004
        assert data == b"A" * 1000 + b"B" * 50000 + b"A" * 49000 + b"tail"
        assert store_bytes(fs, "c.bin") == data
    finally:
        os.close(r)


# ----------------------------------------------------------------------------
# sync, statvfs, directories
# ----------------------------------------------------------------------------

def test_fsync_fdatasync(fs):
    """fsync and fdatasync of files and directories succeed, and a read-only
    fd can be synced too."""
    fd = os.open(fs.path("s.txt"), os.O_CREAT | os.O_RDWR, 0o644)
    try:
        os.write(fd, b"sync me")
        os.fsync(fd)
        os.fdatasync(fd)
    finally:
        os.close(fd)
    fd = os.open(fs.path("s.txt"), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.mkdir(fs.path("d"))
    for d in (fs.mnt, fs.path("d")):
        dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
            os.fdatasync(dfd)
        finally:
            os.close(dfd)
    assert store_bytes(fs, "s.txt") == b"sync me"
    r = subprocess.run(["sync", "-f", fs.path("s.txt")], timeout=10)
    assert r.returncode == 0


def test_statvfs_is_the_stores(fs):
    """statvfs of the mount reports the store's file system (sizes, name length)."""
    mine = os.statvfs(fs.mnt)
    store = os.statvfs(fs.store)
    assert mine.f_blocks * mine.f_frsize == store.f_blocks * store.f_frsize
    assert mine.f_namemax == store.f_namemax
    assert abs(mine.f_bavail * mine.f_frsize - store.f_bavail * store.f_frsize) < 256 * 1024 * 1024
    assert os.statvfs(fs.path(".")).f_blocks == mine.f_blocks
    r = subprocess.run(["df", "-P", fs.mnt], stdout=subprocess.PIPE, text=True, timeout=10)
    assert r.returncode == 0 and fs.mnt in r.stdout


def test_mkdir_rmdir_and_empty_readdir(fs):
    """mkdir/rmdir with their errors; an empty directory lists only . and .."""
    p = fs.path
    os.mkdir(p("e"), 0o750)
    assert stat.S_IMODE(os.stat(p("e")).st_mode) == 0o750
    assert os.listdir(p("e")) == []
    r = subprocess.run(["ls", "-a", p("e")], stdout=subprocess.PIPE, text=True, timeout=10)
    assert r.returncode == 0 and r.stdout.split() == [".", ".."]
    with os.scandir(p("e")) as it:
        assert list(it) == []
    expect_errno(errno.EEXIST, os.mkdir, p("e"))
    expect_errno(errno.ENOENT, os.mkdir, p("no/such"))
    fs.write("file", "f")
    expect_errno(errno.ENOTDIR, os.mkdir, p("file/sub"))
    expect_errno(errno.ENOTDIR, os.rmdir, p("file"))
    expect_errno(errno.ENOENT, os.rmdir, p("missing"))
    os.mkdir(p("e/inner"))
    expect_errno((errno.ENOTEMPTY, errno.EEXIST), os.rmdir, p("e"))
    os.rmdir(p("e/inner"))
    os.rmdir(p("e"))
    assert not os.path.exists(fs.store_path("e"))
    assert fs.listdir() == ["file"]


# ---- large writes, answered before the store has them (the default) or,
# with -o writebehind=off, after: a write of 64 KiB or more to a write-only
# handle is answered once its data is in memory shared with the write-behind
# helper, and the store file gets it after. Either way, whatever looks at
# the file next (a stat, an open, a read, a truncate, a close, an fsync, a
# run) sees it whole.

MiB = 1024 * 1024


@WRITE_MODES
def test_large_writes_are_seen_by_every_later_look(mount, wopts):
    """While the writer still holds the file: stat by path and by a new
    handle, and reads through new handles, all see each write as soon as it
    returned; after close the store holds exactly what was written."""
    fs = mount(opts=wopts)
    path = fs.path("big.bin")
    data = os.urandom(12 * MiB + 12345)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        done = 0
        for size in (MiB, 3 * MiB, 64 * 1024, MiB - 1, 5 * MiB, None):
            size = size or len(data) - done
            assert os.write(fd, data[done:done + size]) == size
            done += size
            assert os.stat(path).st_size == done
            with open(path, "rb") as f:
                assert os.fstat(f.fileno()).st_size == done
                f.seek(done - size)
                assert f.read(size) == data[done - size:done]
        assert done == len(data)
        # The writes went behind unless asked not to.
        assert len(writebehind_helpers(fs.proc.pid)) == (not wopts)
        os.fsync(fd)
        assert store_bytes(fs, "big.bin") == data
    finally:
        os.close(fd)
    assert fs.read_bytes("big.bin") == data
    assert store_bytes(fs, "big.bin") == data


@WRITE_MODES
def test_large_writes_then_truncate_and_overwrite(mount, wopts):
    """A truncate by path between large writes of an open writer applies
    after the writes before it; overwriting writes land in their order."""
    fs = mount(opts=wopts)
    path = fs.path("t.bin")
    a, b, c = os.urandom(4 * MiB), os.urandom(MiB), os.urandom(2 * MiB)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        assert os.write(fd, a) == len(a)
        os.truncate(path, 1000)
        assert os.stat(path).st_size == 1000
        # The writer's offset is still past the old end: a hole, then B.
        assert os.write(fd, b) == len(b)
        # Over the start of A, twice: the later wins.
        assert os.pwrite(fd, c, 0) == len(c)
        assert os.pwrite(fd, c[::-1], 0) == len(c)
    finally:
        os.close(fd)
    want = c[::-1] + bytes(4 * MiB - len(c)) + b
    assert os.path.getsize(path) == len(want)
    assert fs.read_bytes("t.bin") == want


@WRITE_MODES
def test_large_appends_and_read_write_handles(mount, wopts):
    """O_APPEND writers and read-write handles (which keep the page cache)
    are answered after the store took their data, and mix with write-only
    ones."""
    fs = mount(opts=wopts)
    path = fs.path("mix.bin")
    head, more = os.urandom(3 * MiB), os.urandom(2 * MiB)
    with open(path, "wb") as f:
        f.write(head)
    with open(path, "ab") as f:
        f.write(more)
        f.write(more[::-1])
    with open(path, "r+b") as f:
        f.seek(MiB)
        f.write(more)
        f.seek(0)
        assert f.read(MiB) == head[:MiB]
    want = head[:MiB] + more + (head + more + more[::-1])[3 * MiB:]
    assert fs.read_bytes("mix.bin") == want
    assert store_bytes(fs, "mix.bin") == want


@WRITE_MODES
def test_large_script_runs_whole(mount, wopts, tmp_path):
    """A script of several MiB saved by cp (large writes) runs with all of
    its text: the run starts only after the last write reached the store."""
    fs = mount(opts=wopts + ["max_script_size=8M"])
    lines = 4000
    body = b"".join(b"x%d = %d  # %s\n" % (i, i, b"p" * 900) for i in range(lines))
    src = tmp_path / "big.py"
    src.write_bytes(body + b"print('end', x%d)\n" % (lines - 1))
    assert src.stat().st_size > 3 * MiB
    r = subprocess.run(["cp", str(src), fs.path("big.py")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    fs.wait_run("big", timeout=60)
    assert fs.read("big.out") == "end %d\n" % (lines - 1), fs.read("big.error")

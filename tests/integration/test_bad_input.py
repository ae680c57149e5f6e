"""Bad input: odd script contents, odd names, many files, deep trees, bad
option values and bad mountpoints."""

import json
import os
import subprocess
import time

import pytest

from conftest import is_mounted, lazy_unmount, run_binary


def results(fs, stem):
    """(parsed status, .out bytes, .err bytes, .error text) of STEM."""
    return fs.status(stem), fs.read_bytes(stem + ".out"), fs.read_bytes(stem + ".err"), fs.read(stem + ".error")


def save_bytes_and_wait(fs, name, data, timeout=30.0):
    """Like save_and_wait, for raw bytes."""
    stem = name[:-3]
    before = fs.current_run(stem)
    with open(fs.path(name), "wb") as f:
        f.write(data)
    return fs.wait_run(stem, before + 1, timeout)


# ----------------------------------------------------------------------------
# Script contents
# ----------------------------------------------------------------------------

def test_python_script_with_nul_byte(fs):
    """A .py holding a NUL byte ends with a clear .error naming the problem,
    reported as the script's own error rather than the runner's internals."""
    # Was a bug, fixed: with Python 3.11, compile() raises ValueError("source code string
    # cannot contain null bytes"); the runner's bootstrap only catches
    # SyntaxError there, so .error says "NonZeroExit: the script exited with
    # status 1" and .err shows a traceback through the bootstrap itself
    # (File "<string>", line 46, in _agentbayfs_run).
    save_bytes_and_wait(fs, "nul.py", b"print(1)\x00\nprint(2)\n")
    st, out, err, error = results(fs, "nul")
    assert st["state"] == "failed" and out == b"", st
    first = error.split("\n", 1)[0]
    assert first.startswith(("SyntaxError:", "ValueError:")) and "null bytes" in first, error
    assert st["error"]["name"] in ("SyntaxError", "ValueError"), st
    assert b"_agentbayfs" not in err, "stderr shows the runner's own frames: %r" % err


def test_javascript_script_with_nul_byte(fs):
    """A .js holding a NUL byte ends with a clear SyntaxError."""
    save_bytes_and_wait(fs, "nul.js", b"console.log(1)\x00\n")
    st, out, err, error = results(fs, "nul")
    assert st["state"] == "failed" and st["error"]["name"] == "SyntaxError", st
    assert error.startswith("SyntaxError: ") and out == b"", error


def test_invalid_utf8(fs):
    """Invalid UTF-8: Python reports a SyntaxError naming the codec; Node runs
    it with U+FFFD in place of the bad byte."""
    save_bytes_and_wait(fs, "bad.py", b"print('\xff')\n")
    st, out, err, error = results(fs, "bad")
    assert st["state"] == "failed" and st["error"]["name"] == "SyntaxError", st
    assert error.startswith("SyntaxError: ") and "utf-8" in error.split("\n")[0], error
    assert 'File "bad.py", line 1' in error, error
    save_bytes_and_wait(fs, "badjs.js", b"console.log('\xff')\n")
    st, out, err, error = results(fs, "badjs")
    assert st["state"] == "succeeded" and out == "\ufffd\n".encode() and error == "", (st, out)


@pytest.mark.parametrize("ext", [".py", ".js"])
def test_empty_script_runs_and_succeeds(fs, ext):
    """A zero-byte script runs once and succeeds with empty output."""
    open(fs.path("empty" + ext), "wb").close()
    st = fs.wait_run("empty")
    assert st["state"] == "succeeded" and st["exit_code"] == 0, st
    assert st["script"] == "empty" + ext
    assert results(fs, "empty")[1:] == (b"", b"", "")
    fs.assert_runs("empty", 1)


@pytest.mark.parametrize("ext,code", [(".py", b"print('bom')\n"), (".js", b"console.log('bom')\n")])
def test_script_with_bom(fs, ext, code):
    """A UTF-8 byte order mark at the start of a script is accepted."""
    st = save_bytes_and_wait(fs, "bom" + ext, b"\xef\xbb\xbf" + code)
    assert st["state"] == "succeeded", (st, fs.read("bom.error"))
    assert fs.read_bytes("bom.out") == b"bom\n"


@pytest.mark.parametrize("ext,code", [
    (".py", b"import sys\r\nif True:\r\n    print('a')\r\nprint('b', file=sys.stderr)\r\n"),
    (".js", b"if (true) {\r\n  console.log('a');\r\n}\r\nconsole.error('b');\r\n"),
])
def test_script_with_crlf(fs, ext, code):
    """CRLF line endings work (indented blocks included)."""
    st = save_bytes_and_wait(fs, "crlf" + ext, code)
    assert st["state"] == "succeeded", (st, fs.read("crlf.error"))
    assert fs.read_bytes("crlf.out") == b"a\n" and fs.read_bytes("crlf.err") == b"b\n"


def test_script_over_max_script_size_is_not_run(mount, tmp_path):
    """Over -o max_script_size=1K: ScriptTooLarge in .error and the code never
    runs (no side effect); exactly 1 KiB still runs."""
    marker = tmp_path / "ran"
    fs = mount(opts=["max_script_size=1K", "sandbox=none"])

    def script(size):
        head = "open(%r, 'a').write('x')\nprint('ran')\n" % str(marker)
        return head + "#" * (size - len(head) - 1) + "\n"

    big = script(1025)
    assert len(big.encode()) == 1025
    st = fs.save_and_wait("big.py", big)
    assert st["state"] == "failed" and st["error"]["name"] == "ScriptTooLarge", st
    assert st["exit_code"] is None, st
    error = fs.read("big.error")
    assert error.startswith("ScriptTooLarge: ") and "1024" in error and "max_script_size" in error, error
    assert fs.read("big.out") == "" and fs.read("big.err") == ""
    time.sleep(0.3)
    assert not marker.exists(), "the too-large script ran"
    fs.assert_runs("big", 1)
    # At the limit it runs.
    st = fs.save_and_wait("big.py", script(1024))
    assert st["state"] == "succeeded" and st["run"] == 2, st
    assert fs.read("big.out") == "ran\n" and marker.read_text() == "x"
    assert fs.read("big.py") == script(1024)


# ----------------------------------------------------------------------------
# Names
# ----------------------------------------------------------------------------

ODD_NAMES = ["my script.py", "two  spaces .js", "new\nline.py", "tab\tname.py", "é.py", "日本.py",
             "😀.js", "quote'\"$`\\.py", "-dash.py", "--.js", " lead.py"]


def test_odd_script_names(fs):
    """Spaces, a newline, a tab, quotes, non-ASCII, emoji and a leading '-' in
    script names: each runs and its results carry the same odd stem."""
    for name in ODD_NAMES:
        if name.endswith(".py"):
            code = "print(%r)\n" % name
        else:
            code = "console.log(%s);\n" % json.dumps(name)
        fs.write(name, code)
    listing = fs.listdir()
    for name in ODD_NAMES:
        stem = name[:-3]
        st = fs.wait_run(stem)
        assert st["state"] == "succeeded" and st["script"] == name, (name, st, fs.read(stem + ".error"))
        assert fs.read(stem + ".out") == name + "\n", name
        assert os.path.isfile(fs.store_path(name)), name
    listing = fs.listdir()
    for name in ODD_NAMES:
        for suffix in (".out", ".err", ".error", ".status"):
            assert name[:-3] + suffix in listing, (name, suffix)
    # Tools that take options read a leading '-' name after "--".
    r = subprocess.run(["cat", "--", "-dash.out"], cwd=fs.mnt, stdout=subprocess.PIPE, timeout=10)
    assert r.returncode == 0 and r.stdout == b"-dash.py\n"
    r = subprocess.run(["ls", "-1b"], cwd=fs.mnt, stdout=subprocess.PIPE, text=True, timeout=10)
    assert r.returncode == 0 and "new\\nline.py" in r.stdout.split("\n"), r.stdout


@pytest.mark.parametrize("length", [247, 251, 252, 255])
def test_script_name_too_long_for_results(fs, length):
    """A .py name whose results could not be named (252 or 255 bytes, so
    "<stem>.status" is over 255) is stored intact and not run; the daemon
    only warns, and a rename to a short name runs it."""
    name = "a" * (length - 3) + ".py"
    code = "print('long name')\n"
    fs.write(name, code)
    fs.assert_no_run(name, settle=0.8)
    fs.check_alive()
    assert fs.read(name) == code
    with open(fs.store_path(name)) as f:
        assert f.read() == code
    assert name in fs.listdir() and os.stat(fs.path(name)).st_size == len(code)
    os.rename(fs.path(name), fs.path("short.py"))
    assert fs.wait_run("short")["state"] == "succeeded"
    assert fs.read("short.out") == "long name\n"


@pytest.mark.parametrize("stem_len", [200, 243])
def test_long_script_names_that_run_get_results(fs, stem_len):
    """A script name the daemon accepts as a script (stem up to 243 bytes, so
    that even the temporary ".<stem>.status.tmp" fits in 255) runs and gets
    its result files."""
    name = "s" * stem_len + ".py"
    fs.write(name, "print('long')\n")
    st = fs.wait_run(name[:-3], timeout=5)
    assert st["state"] == "succeeded", st
    assert fs.read(name[:-3] + ".out") == "long\n"
    assert fs.read(name[:-3] + ".error") == ""


def test_deep_directories(fs):
    """50 nested directories made through the mount: a script at the bottom
    and one half way down run, with results beside them."""
    parts = ["level%02d" % i for i in range(50)]
    path = ""
    for p in parts:
        path = os.path.join(path, p)
        os.mkdir(fs.path(path))
    mid = os.path.join(*parts[:25])
    st = fs.save_and_wait(os.path.join(path, "deep.py"), "import os\nprint(os.path.basename(__file__))\n")
    assert st["state"] == "succeeded", st
    assert fs.read(os.path.join(path, "deep.out")) == "deep.py\n"
    assert fs.save_and_wait(os.path.join(mid, "mid.js"), "console.log('mid');\n")["state"] == "succeeded"
    assert fs.read(os.path.join(mid, "mid.out")) == "mid\n"
    assert os.path.isfile(fs.store_path(os.path.join(path, "deep.py")))
    assert fs.listdir(path) == ["deep.err", "deep.error", "deep.out", "deep.py", "deep.status"]


@pytest.mark.deadline(60)
def test_ten_thousand_files_in_one_directory(fs):
    """10,000 files created through the mount in one directory: ls lists all of
    them (plus a script's results), stat works for each, the store has them."""
    os.mkdir(fs.path("many"))
    names = ["f%05d.txt" % i for i in range(10000)]
    t0 = time.monotonic()
    for n in names:
        os.close(os.open(fs.path("many/" + n), os.O_CREAT | os.O_WRONLY, 0o644))
    fs.write("many/f00042.txt", "forty-two")
    fs.save_and_wait("many/run.py", "print('among many')\n")
    created = time.monotonic() - t0
    listing = fs.listdir("many")
    assert len(listing) == 10005
    assert listing[:10000] == names
    assert listing[10000:] == ["run.err", "run.error", "run.out", "run.py", "run.status"]
    r = subprocess.run(["ls", "-f", fs.path("many")], stdout=subprocess.PIPE, text=True, timeout=20)
    assert r.returncode == 0
    assert sorted(x for x in r.stdout.split("\n") if x) == sorted([".", ".."] + listing)
    sizes = {e.name: e.stat().st_size for e in os.scandir(fs.path("many"))}
    assert len(sizes) == 10005 and sizes["f00042.txt"] == 9 and sizes["f09999.txt"] == 0
    assert len(os.listdir(fs.store_path("many"))) == 10000 + 1 + 1  # files, run.py, meta folder
    assert fs.read("many/run.out") == "among many\n"
    assert created < 40, "creating 10,000 files took %.1f s" % created


# ----------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------

def refused(args, mnt):
    """Runs the daemon with ARGS; returns (rc, stderr, mounted-at-exit)."""
    try:
        rc, out, err = run_binary(args, timeout=10)
        return rc, out + err, is_mounted(mnt)
    finally:
        lazy_unmount(mnt)


@pytest.mark.parametrize("opt,word", [
    ("timeout=0", "timeout"),
    ("timeout=abc", "timeout"),
    ("max_output=-1", "max_output"),
    ("jobs=0", "jobs"),
    ("memory=1M", "memory"),
    ("sandbox=maybe", "sandbox"),
    ("backend=cloud", "backend"),
    ("python=relative", "python"),
    ("bogus", "bogus"),
])
def test_bad_option_value_refused(bin_path, tmp_path, opt, word):
    """A bad -o value or an unknown -o option: non-zero exit, a message naming
    the option, and nothing mounted."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    rc, text, mounted = refused(["-f", "-o", "store=%s,%s" % (tmp_path / "store", opt), str(mnt)], str(mnt))
    assert rc not in (0, None), (opt, rc, text)
    assert word in text, (opt, text)
    assert not mounted, "%s: the mountpoint was mounted" % opt


def test_store_argument_and_too_many_arguments(bin_path, tmp_path):
    """[STORE] MOUNTPOINT: three positional arguments, or a store given both
    before the mountpoint and with -o store= (two different ones), are
    refused with a message that says what to give; nothing is mounted."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    a, b = tmp_path / "a", tmp_path / "b"
    rc, text, mounted = refused(["-f", str(a), str(b), str(mnt)], str(mnt))
    assert rc not in (0, None) and not mounted, (rc, text)
    assert "too many arguments" in text and "[STORE] MOUNTPOINT" in text, text
    rc, text, mounted = refused(["-f", "-o", "store=%s" % b, str(a), str(mnt)], str(mnt))
    assert rc not in (0, None) and not mounted, (rc, text)
    assert "two stores" in text and str(a) in text and str(b) in text, text
    assert not a.exists() and not b.exists()


def test_mountpoint_is_a_file(bin_path, tmp_path):
    """A mountpoint that is a regular file: non-zero exit and a clear message."""
    f = tmp_path / "afile"
    f.write_text("x")
    rc, text, mounted = refused(["-f", "-o", "store=%s" % (tmp_path / "store"), str(f)], str(f))
    assert rc not in (0, None) and not mounted, (rc, text)
    assert str(f) in text and "not a directory" in text, text
    assert f.read_text() == "x"


def test_missing_mountpoint(bin_path, tmp_path):
    """A mountpoint that does not exist: non-zero exit, a message naming it."""
    mnt = tmp_path / "missing"
    rc, text, mounted = refused(["-f", "-o", "store=%s" % (tmp_path / "store"), str(mnt)], str(mnt))
    assert rc not in (0, None) and not mounted, (rc, text)
    assert str(mnt) in text and ("does not exist" in text or "No such file" in text), text
    assert not mnt.exists()


def test_mountpoint_already_mounted(fs, tmp_path):
    """Mounting again on a live agentbayfs mountpoint: non-zero exit, a clear
    message, and the first mount keeps working."""
    rc, out, err = run_binary(["-f", "-o", "store=%s" % (tmp_path / "other"), fs.mnt], timeout=10)
    assert rc not in (0, None), (rc, out, err)
    assert "already a mountpoint" in err and fs.mnt in err, err
    fs.check_alive()
    with open("/proc/self/mountinfo") as f:
        assert sum(1 for line in f if line.split()[4] == fs.mnt) == 1
    assert fs.save_and_wait("still.py", "print('still here')\n")["state"] == "succeeded"
    assert fs.read("still.out") == "still here\n"


def test_start_failure_in_the_background_reaches_the_command(bin_path, tmp_path):
    """Started without -f, the command returns only once the daemon is ready
    or has failed: a failure met after the mount (here: every uid the runs
    could use is held by other mounts) makes the command exit non-zero with
    the daemon's message on its stderr, and leaves nothing mounted or
    running, rather than a 0 followed by a mount that vanishes."""
    if os.geteuid() != 0:
        pytest.skip("run uids are claimed only by a daemon started as root")
    import fcntl
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    lock_dir = "/run/agentbayfs"
    os.makedirs(lock_dir, mode=0o700, exist_ok=True)
    held = []
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    try:
        for chunk in range(65536 // 64):
            fd = os.open(os.path.join(lock_dir, "uids-%d.lock" % chunk), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            held.append(fd)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pass   # a live mount's: taken either way
        rc, text, mounted = refused(["-o", "store=%s,warm=0" % (tmp_path / "store"), str(mnt)], str(mnt))
    finally:
        for fd in held:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert rc not in (0, None), (rc, text)
    assert "all run uids are taken" in text, text
    assert not mounted
    left = subprocess.run(["pgrep", "-f", "agentbayfs .*%s$" % mnt], stdout=subprocess.PIPE, text=True).stdout
    assert not left.strip(), "a daemon was left running: %s" % left

"""Real editors: each save runs the newest content exactly once, temp files never run."""

import fcntl
import os
import pty
import select
import shlex
import shutil
import signal
import struct
import subprocess
import termios
import time

import pytest


def need(binary):
    if shutil.which(binary) is None:
        pytest.skip("%s is not installed" % binary)


def editor_env():
    env = dict(os.environ)
    env.update(TERM="xterm", LANG="C.UTF-8", LC_ALL="C.UTF-8")
    env.pop("EDITOR", None)
    env.pop("VISUAL", None)
    return env


def only_status(fs, stem="x"):
    """No file but STEM's script ever got a .status (no temp file ran)."""
    assert fs.status_files() == [stem + ".status"], fs.listdir()


def run_vim(fs, extra_cmds, edit_cmd):
    need("vim")
    need("script")
    vim = ["vim", "-Nu", "NONE", "-i", "NONE"]
    for c in extra_cmds + [edit_cmd, "wq"]:
        vim += ["-c", c]
    vim.append(fs.path("x.py"))
    cmd = " ".join(shlex.quote(a) for a in vim)
    r = subprocess.run(["script", "-qc", cmd, "/dev/null"], cwd=fs.mnt, env=editor_env(),
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=30)
    assert r.returncode == 0, r.stdout[-2000:]


# The mount lives in the temp directory, which is in vim's default 'backupskip'
# (so plain vim overwrites in place there); clearing it gives the usual
# rename-the-original-to-x.py~ save, and bkc=yes the copy-then-overwrite one.
@pytest.mark.parametrize("extra", [[], ["set bsk="], ["set bsk=", "set bkc=yes"]],
                         ids=["plain", "rename-backup", "backupcopy"])
def test_vim_save_runs_once(fs, extra):
    """vim :wq (in place, rename-style and backupcopy=yes saves) runs the edited script exactly once."""
    fs.save_and_wait("x.py", 'print("v0")\n')
    run_vim(fs, extra, 'normal Goprint("VIM-SAVED-1")')
    st = fs.wait_run("x", 2)
    assert st["state"] == "succeeded", (st, fs.read("x.error"))
    assert fs.read("x.out") == "v0\nVIM-SAVED-1\n"
    fs.assert_runs("x", 2)
    only_status(fs)
    # vim cleans up its swap file, 4913 probe and backup.
    assert fs.listdir() == ["x.err", "x.error", "x.out", "x.py", "x.status"]
    with open(fs.store_path("x.py")) as f:
        assert f.read() == 'print("v0")\nprint("VIM-SAVED-1")\n'

    # A second session: counted again exactly once.
    run_vim(fs, extra, 'normal Goprint("VIM-SAVED-2")')
    fs.wait_run("x", 3)
    assert fs.read("x.out") == "v0\nVIM-SAVED-1\nVIM-SAVED-2\n"
    fs.assert_runs("x", 3)
    only_status(fs)


def test_vim_new_file(fs):
    """vim writing a brand-new script runs it exactly once."""
    run_vim(fs, [], 'normal iprint("NEW-FROM-VIM")')
    st = fs.wait_run("x", 1)
    assert st["state"] == "succeeded", (st, fs.read("x.error"))
    assert fs.read("x.out") == "NEW-FROM-VIM\n"
    fs.assert_runs("x", 1)
    only_status(fs)


class Pty:
    """A program on a pseudo terminal: type into it, watch what it prints."""

    def __init__(self, argv, cwd, env):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # child
            try:
                os.chdir(cwd)
                os.execvpe(argv[0], argv, env)
            finally:
                os._exit(127)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        self.buf = b""
        self.status = None

    def pump(self, timeout):
        r, _, _ = select.select([self.fd], [], [], timeout)
        if r:
            try:
                data = os.read(self.fd, 65536)
            except OSError:
                data = b""
            self.buf += data
            return bool(data)
        return False

    def expect(self, needle, count=1, timeout=10):
        """Wait until NEEDLE has appeared COUNT times in the output."""
        deadline = time.monotonic() + timeout
        while self.buf.count(needle) < count:
            if time.monotonic() > deadline:
                raise AssertionError("did not see %r x%d on the terminal; got: %r"
                                     % (needle, count, self.buf[-1500:]))
            self.pump(0.1)

    def quiet(self, period=0.3, timeout=5):
        """Wait until the program has printed nothing for PERIOD s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.pump(period):
                return

    def send(self, data):
        os.write(self.fd, data)
        self.pump(0.05)

    def wait(self, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.pump(0.05)
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = status
                return os.waitstatus_to_exitcode(status)
        raise AssertionError("program did not exit; screen: %r" % self.buf[-1500:])

    def kill(self):
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except OSError:
                pass
        os.close(self.fd)


def test_nano_saves(fs):
    """nano on a pty: two Ctrl-O saves give exactly two runs, each of the newest text."""
    need("nano")
    fs.save_and_wait("x.py", 'print("n0")\n')
    p = Pty(["nano", "--ignorercfiles", "x.py"], fs.mnt, editor_env())
    try:
        p.expect(b"nano")
        p.quiet()
        p.send(b'print("NANO-1")\r')
        p.send(b"\x0f")                   # Ctrl-O: write out
        p.expect(b"File Name to Write")
        p.send(b"\r")                     # accept the file name
        p.expect(b"Wrote")
        st = fs.wait_run("x", 2)
        assert st["state"] == "succeeded", (st, fs.read("x.error"))
        assert fs.read("x.out") == "NANO-1\nn0\n"
        fs.assert_runs("x", 2)

        p.send(b'print("NANO-2")\r')
        p.send(b"\x0f")
        p.expect(b"File Name to Write", count=2)
        p.send(b"\r")
        p.expect(b"Wrote", count=2)
        fs.wait_run("x", 3)
        assert fs.read("x.out") == "NANO-1\nNANO-2\nn0\n"

        p.send(b"\x18")                   # Ctrl-X: nothing unsaved, so it exits
        assert p.wait() == 0
    finally:
        p.kill()
    fs.assert_runs("x", 3)
    only_status(fs)
    with open(fs.store_path("x.py")) as f:
        assert f.read() == 'print("NANO-1")\nprint("NANO-2")\nprint("n0")\n'


def run_emacs(fs, elisp):
    need("emacs")
    r = subprocess.run(["emacs", "-Q", "--batch", "--eval", elisp], cwd=fs.mnt,
                       env=editor_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=40)
    assert r.returncode == 0, r.stdout[-3000:]
    return r.stdout


def test_emacs_two_saves(fs):
    """emacs --batch saving a new file twice (1 s apart) gives exactly runs 1 and 2."""
    run_emacs(fs, '(progn (find-file "x.py")'
                  ' (insert "print(\\"E1\\")\\n") (save-buffer)'
                  ' (sleep-for 1)'
                  ' (insert "print(\\"E2\\")\\n") (save-buffer))')
    st = fs.wait_run("x", 2)
    assert st["state"] == "succeeded", (st, fs.read("x.error"))
    assert fs.read("x.out") == "E1\nE2\n"
    fs.assert_runs("x", 2)
    only_status(fs)
    assert not any(n.startswith(".#") for n in fs.listdir()), fs.listdir()


def test_emacs_backup_of_existing_file(fs):
    """emacs saving an existing script (backup x.py~ by rename) runs it once; x.py~ never runs."""
    fs.save_and_wait("x.py", 'print("e0")\n')
    # Files under the temp directory get no backups by default: force them.
    run_emacs(fs, '(progn (setq backup-enable-predicate (lambda (name) t))'
                  ' (find-file "x.py") (goto-char (point-max))'
                  ' (insert "print(\\"EMACS-EDIT\\")\\n") (save-buffer))')
    st = fs.wait_run("x", 2)
    assert st["state"] == "succeeded", (st, fs.read("x.error"))
    assert fs.read("x.out") == "e0\nEMACS-EDIT\n"
    fs.assert_runs("x", 2)
    only_status(fs)
    assert "x.py~" in fs.listdir()
    with open(fs.path("x.py~")) as f:
        assert f.read() == 'print("e0")\n'

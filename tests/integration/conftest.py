"""Harness for the agentbayfs integration tests (libfuse test style).

The daemon under test is found through the environment variable
AGENTBAYFS_BIN; when it is unset, build/agentbayfs relative to the repository
root is used.  AGENTBAYFS_TEST_OPTS may hold extra comma separated "-o"
options that every mount gets (for example "sandbox=none" while debugging).

Fixtures:
  mount -- a factory: mount(opts=..., store=..., mnt=...) starts the daemon in
           the foreground on a fresh (or given) mountpoint and store and
           returns a Mount.  Every mount it made is unmounted on teardown.
  fs    -- one Mount with the default options.
  bin_path -- the daemon binary (for tests that run it without mounting).

Teardown always unmounts: "fusermount3 -u", then the daemon must exit 0
within 15 s; on failure the mount is lazily unmounted and the daemon killed.
Afterwards the daemon logs are scanned for unexpected lines that look like
errors (see LOG_BAD); tests register expected ones with allow_log().

Each test body runs under a SIGALRM based time limit (60 s by default,
override with @pytest.mark.deadline(SECONDS)).  A watchdog thread kills the
daemons of a test that stays stuck in the kernel past the limit, which makes
any blocked file system call return.
"""

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

DEFAULT_DEADLINE = 60
MOUNT_WAIT = 10.0
UNMOUNT_WAIT = 15.0
# After a run has finished, how long to watch for (wrong) extra runs.
SETTLE = 0.4

FINAL_STATES = {"succeeded", "failed", "timed_out", "cancelled", "interrupted"}
ALL_STATES = FINAL_STATES | {"pending", "running"}
RESULT_SUFFIXES = (".out", ".err", ".error", ".status")

LOG_BAD = re.compile(r"error|fatal|sanitizer|leak|abort|assert|segv|==[0-9]+==", re.IGNORECASE)
# A report of valgrind (AGENTBAYFS_WRAP) or a sanitizer: no allow_log() excuses it.
TOOL_REPORT = re.compile(r"^==[0-9]+==")


def binary_path():
    """The daemon binary: $AGENTBAYFS_BIN, else build/agentbayfs in the repo."""
    env = os.environ.get("AGENTBAYFS_BIN")
    if env:
        return os.path.abspath(env)
    return os.path.join(REPO_ROOT, "build", "agentbayfs")


def extra_opts():
    return [o for o in os.environ.get("AGENTBAYFS_TEST_OPTS", "").split(",") if o]


def require_binary():
    path = binary_path()
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail("agentbayfs binary not found at %s (set AGENTBAYFS_BIN or build it)" % path)
    return path


def require_fuse():
    if not os.path.exists("/dev/fuse"):
        pytest.skip("/dev/fuse is missing")
    if shutil.which("fusermount3") is None:
        pytest.fail("fusermount3 is not installed")


def _unescape_mountinfo(field):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def is_mounted(path):
    """True if PATH is a mount point, judged from /proc/self/mountinfo.

    Unlike os.path.ismount this never sends a request to a (maybe hung) FUSE
    daemon."""
    path = os.path.realpath(path)
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                if len(fields) > 4 and _unescape_mountinfo(fields[4]) == path:
                    return True
    except OSError:
        pass
    return False


def fusermount(*args, timeout=10):
    return subprocess.run(["fusermount3"] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=timeout, text=True)


def lazy_unmount(path):
    """fusermount3 -u -z PATH while it is mounted (cleans up a dead mount)."""
    for _ in range(5):
        if not is_mounted(path):
            return
        try:
            fusermount("-u", "-z", path)
        except subprocess.TimeoutExpired:
            pass
    if is_mounted(path):
        subprocess.run(["umount", "-l", path], timeout=10,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def call_with_timeout(func, timeout, what):
    """Run FUNC() in a daemon thread; fail if it does not finish in TIMEOUT s.

    Used for every read of a result file: a read that hangs in the kernel
    cannot be interrupted from Python, but a thread can be left behind (the
    teardown kills the daemon, which makes the read return)."""
    box = {}

    def work():
        try:
            box["value"] = func()
        except BaseException as e:  # handed to the caller
            box["exc"] = e

    t = threading.Thread(target=work, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise AssertionError("%s did not finish within %.1f s" % (what, timeout))
    if "exc" in box:
        raise box["exc"]
    return box["value"]


def read_bytes(path, timeout=20.0):
    def work():
        with open(path, "rb") as f:
            return f.read()
    return call_with_timeout(work, timeout, "reading %s" % path)


def proc_stat(pid):
    """The fields of /proc/PID/stat after the command name (state first,
    then ppid, ...; starttime is [19]), or None once PID is gone."""
    try:
        with open("/proc/%s/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    return s[s.rindex(")") + 2:].split()


# Tests of large writes run in both modes: the default (write-behind) and
# -o writebehind=off; WOPTS is the options to mount with.
WRITE_MODES = pytest.mark.parametrize("wopts", [["writebehind=off"], []], ids=["sync", "writebehind"])


def writebehind_helpers(pid):
    """Pids of the live write-behind helpers (agentbayfs-wb) forked by daemon
    PID (zombies not counted)."""
    found = []
    for entry in os.listdir("/proc"):
        fields = proc_stat(entry) if entry.isdigit() else None
        if not fields or fields[1] != str(pid) or fields[0] == "Z":
            continue
        try:
            with open("/proc/%s/comm" % entry) as f:
                if f.read().strip() == "agentbayfs-wb":
                    found.append(int(entry))
        except OSError:
            pass
    return found


def stem_of(name):
    """'sub/a.py' -> 'sub/a'; names without .py/.js are returned as is."""
    for ext in (".py", ".js"):
        if name.endswith(ext):
            return name[: -len(ext)]
    return name


def run_binary(args, timeout=10, mnt=None):
    """Run the daemon binary with ARGS; return (returncode, stdout, stderr).

    If it is still running after TIMEOUT s it is killed (returncode None).  If
    MNT ended up mounted (a bad option was wrongly accepted) it is unmounted."""
    proc = subprocess.Popen([require_binary()] + list(args), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            errors="replace")
    try:
        out, err = proc.communicate(timeout=timeout)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate(timeout=10)
        rc = None
    finally:
        if mnt is not None:
            lazy_unmount(mnt)
    return rc, out, err


# ----------------------------------------------------------------------------
# Time limit per test
# ----------------------------------------------------------------------------

class DeadlineExceeded(Exception):
    """Raised in the test body by SIGALRM when it runs past its deadline."""


_LIVE = []  # Mounts whose daemon may be running (for the watchdog)
_LIVE_LOCK = threading.Lock()


def _watchdog_abort():
    """Kill every live daemon so that file system calls stuck on it return."""
    with _LIVE_LOCK:
        mounts = list(_LIVE)
    for m in mounts:
        m.watchdog_fired = True
        try:
            m.proc.kill()
        except OSError:
            pass
        lazy_unmount(m.mnt)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "deadline(seconds): time limit of the test body (default %d s)" % DEFAULT_DEADLINE)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    marker = item.get_closest_marker("deadline")
    limit = int(marker.args[0]) if marker and marker.args else DEFAULT_DEADLINE

    def on_alarm(signum, frame):
        raise DeadlineExceeded("test ran longer than its %d s time limit" % limit)

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(limit)
    watchdog = threading.Timer(limit + 10, _watchdog_abort)
    watchdog.daemon = True
    watchdog.start()
    try:
        yield
    finally:
        signal.alarm(0)
        watchdog.cancel()
        signal.signal(signal.SIGALRM, old)


# ----------------------------------------------------------------------------
# Mounts
# ----------------------------------------------------------------------------

class Mount:
    """One running daemon: .mnt, .store, .proc, .log, .opts and helpers.

    Names given to the helpers are relative to the mountpoint."""

    def __init__(self, factory, mnt, store, opts, log, proc):
        self.factory = factory
        self.mnt = mnt
        self.store = store
        self.opts = list(opts)
        self.log = log
        self.proc = proc
        self.expect_dead = False   # set when a test kills the daemon on purpose
        self.unmounted = False
        self.watchdog_fired = False
        self.env = None            # extra environment given to the daemon

    # -- paths and plain files ------------------------------------------------

    def path(self, name):
        return os.path.join(self.mnt, name)

    def store_path(self, name):
        return os.path.join(self.store, name)

    def write(self, name, data, mode="w"):
        """open/write/close NAME in the mount (one save)."""
        if isinstance(data, str):
            data = data.encode()
        with open(self.path(name), mode.replace("b", "") + "b") as f:
            f.write(data)

    def read_bytes(self, name, timeout=20.0):
        return read_bytes(self.path(name), timeout)

    def read(self, name, timeout=20.0):
        """Contents of NAME as text; fails if the read takes over TIMEOUT s."""
        return self.read_bytes(name, timeout).decode("utf-8", "replace")

    def listdir(self, sub=""):
        return sorted(os.listdir(self.path(sub) if sub else self.mnt))

    def status_files(self, sub=""):
        return [n for n in self.listdir(sub) if n.endswith(".status")]

    # -- status ----------------------------------------------------------------

    def try_status(self, stem):
        """The parsed .status of STEM, or None when it does not exist."""
        try:
            raw = self.read_bytes(stem + ".status", timeout=5.0)
        except FileNotFoundError:
            return None
        try:
            st = json.loads(raw.decode("utf-8"))
        except ValueError as e:
            raise AssertionError("%s.status is not valid JSON (%s): %r" % (stem, e, raw))
        assert isinstance(st, dict), "%s.status is not a JSON object: %r" % (stem, raw)
        return st

    def status(self, stem):
        """The parsed .status of STEM (fails if it is missing)."""
        st = self.try_status(stem)
        assert st is not None, "%s.status does not exist; listing: %s" % (stem, self._listing(stem))
        return st

    def _listing(self, stem):
        d = os.path.dirname(stem)
        try:
            return self.listdir(d)
        except OSError as e:
            return "<%s>" % e

    def wait_for_status(self, stem, pred, timeout=30.0, what="condition"):
        """Poll STEM's status until PRED(status) is true; return the status."""
        deadline = time.monotonic() + timeout
        st = None
        while True:
            self.check_alive()
            st = self.try_status(stem)
            if st is not None and pred(st):
                return st
            if time.monotonic() > deadline:
                raise AssertionError("timed out after %.1f s waiting for %s on %s.status; "
                                     "last status: %s; listing: %s"
                                     % (timeout, what, stem, st, self._listing(stem)))
            time.sleep(0.05)

    def wait_run(self, stem, run=1, timeout=30.0):
        """Wait until STEM's status has run >= RUN and a final state."""
        return self.wait_for_status(
            stem, lambda st: (st.get("run") or 0) >= run and st.get("state") in FINAL_STATES,
            timeout, "run >= %d in a final state" % run)

    def wait_state(self, stem, state, timeout=30.0):
        return self.wait_for_status(stem, lambda st: st.get("state") == state,
                                    timeout, "state %r" % state)

    def current_run(self, stem):
        st = self.try_status(stem)
        return (st.get("run") or 0) if st else 0

    def save_and_wait(self, name, data, timeout=30.0):
        """Write script NAME and wait for the run it causes; return its status."""
        stem = stem_of(name)
        before = self.current_run(stem)
        self.write(name, data)
        return self.wait_run(stem, before + 1, timeout)

    def assert_runs(self, stem, n, settle=SETTLE):
        """After SETTLE s, STEM has had exactly N runs and is in a final state."""
        time.sleep(settle)
        st = self.status(stem)
        assert st["run"] == n, "%s: expected exactly %d run(s), status says %s" % (stem, n, st)
        assert st["state"] in FINAL_STATES, "%s: not finished: %s" % (stem, st)
        return st

    def assert_no_run(self, name, settle=SETTLE):
        """NAME (a helper or non-script file) never produced result files."""
        time.sleep(settle)
        stem = stem_of(name)
        d = os.path.dirname(name)
        listing = self.listdir(d)
        for suffix in RESULT_SUFFIXES:
            assert os.path.basename(stem) + suffix not in listing, \
                "%s produced %s%s; listing: %s" % (name, stem, suffix, listing)
        assert not os.path.exists(self.path(stem + ".status")), \
            "%s produced %s.status" % (name, stem)

    # -- logs ------------------------------------------------------------------

    def allow_log(self, pattern):
        """Lines of the daemon log matching PATTERN are expected (regex, case-insensitive)."""
        self.factory.allow_log(pattern)

    def log_text(self):
        try:
            with open(self.log, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def log_tail(self, n=40):
        lines = self.log_text().splitlines()
        return "\n".join(lines[-n:])

    # -- lifecycle -------------------------------------------------------------

    def check_alive(self):
        if self.expect_dead or self.unmounted:
            return
        rc = self.proc.poll()
        if rc is not None:
            raise AssertionError("agentbayfs exited unexpectedly with status %s; log:\n%s"
                                 % (rc, self.log_tail()))

    def unmount(self):
        """Clean unmount: fusermount3 -u, then the daemon must exit 0 within 15 s."""
        if self.unmounted:
            return
        self.unmounted = True
        try:
            if self.expect_dead:
                lazy_unmount(self.mnt)
                try:
                    self.proc.wait(timeout=UNMOUNT_WAIT)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
                return
            rc = self.proc.poll()
            if rc is not None:
                lazy_unmount(self.mnt)
                raise AssertionError("agentbayfs had already exited (status %s) before unmount; "
                                     "log:\n%s" % (rc, self.log_tail()))
            try:
                r = fusermount("-u", self.mnt, timeout=UNMOUNT_WAIT)
            except subprocess.TimeoutExpired:
                self._abort()
                raise AssertionError("fusermount3 -u %s hung; log:\n%s" % (self.mnt, self.log_tail()))
            if r.returncode != 0:
                self._abort()
                raise AssertionError("fusermount3 -u failed (%d): %s\nlog:\n%s"
                                     % (r.returncode, r.stdout.strip(), self.log_tail()))
            try:
                rc = self.proc.wait(timeout=UNMOUNT_WAIT)
            except subprocess.TimeoutExpired:
                self._abort()
                raise AssertionError("agentbayfs did not exit within %.0f s of unmount; log:\n%s"
                                     % (UNMOUNT_WAIT, self.log_tail()))
            if self.watchdog_fired:
                raise AssertionError("the test hung and its daemon was killed by the watchdog")
            if rc != 0:
                raise AssertionError("agentbayfs exited with status %s after unmount; log:\n%s"
                                     % (rc, self.log_tail()))
            if is_mounted(self.mnt):
                lazy_unmount(self.mnt)
                raise AssertionError("%s still mounted after the daemon exited" % self.mnt)
        finally:
            with _LIVE_LOCK:
                if self in _LIVE:
                    _LIVE.remove(self)

    def _abort(self):
        lazy_unmount(self.mnt)
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def kill9(self):
        """kill -9 the daemon (the dead mount stays until lazy_unmount)."""
        self.expect_dead = True
        self.proc.kill()
        self.proc.wait(timeout=10)

    def remount(self, opts=None):
        """Unmount cleanly and mount the same store on the same mountpoint again."""
        self.unmount()
        return self.factory(opts=self.opts if opts is None else opts,
                            store=self.store, mnt=self.mnt, env=self.env)


class MountFactory:
    def __init__(self, base):
        self.base = base
        self.mounts = []
        self.allowed = []
        self.count = 0

    def allow_log(self, pattern):
        self.allowed.append(re.compile(pattern, re.IGNORECASE))

    def __call__(self, opts=None, store=None, mnt=None, args=(), env=None):
        """Start the daemon; return a Mount once the mountpoint is mounted.

        OPTS: list of "-o" options besides store= (strings "key=value");
        STORE / MNT: reuse these directories (default: fresh ones);
        ARGS: further command line arguments;
        ENV: variables for the daemon. AGENTBAY_* variables of the test's own
        environment never reach it (they would switch the backend)."""
        require_fuse()
        binary = require_binary()
        self.count += 1
        n = self.count
        mnt = mnt or os.path.join(self.base, "mnt" if n == 1 else "mnt%d" % n)
        store = store or os.path.join(self.base, "store" if n == 1 else "store%d" % n)
        os.makedirs(mnt, exist_ok=True)
        os.makedirs(store, exist_ok=True)
        opts = list(opts or [])
        log = os.path.join(self.base, "daemon-%d.log" % n)
        # AGENTBAYFS_WRAP runs the daemon under a tool, e.g. valgrind.
        cmd = os.environ.get("AGENTBAYFS_WRAP", "").split() + [binary, "-f", "-o", "store=" + store]
        all_opts = opts + extra_opts()
        if all_opts:
            cmd += ["-o", ",".join(all_opts)]
        cmd += list(args) + [mnt]
        with open(log, "w") as logf:
            logf.write("# %s\n" % " ".join(cmd))
            logf.flush()
            daemon_env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTBAY_")}
            # A configuration file of the user running the tests must not
            # change them: an empty configuration folder of the test's own.
            daemon_env["XDG_CONFIG_HOME"] = os.path.join(self.base, "config")
            daemon_env.update(env or {})
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf,
                                    stderr=subprocess.STDOUT, cwd=self.base, env=daemon_env)
        m = Mount(self, mnt, store, opts, log, proc)
        m.env = env
        self.mounts.append(m)
        with _LIVE_LOCK:
            _LIVE.append(m)
        deadline = time.monotonic() + MOUNT_WAIT
        while True:
            rc = proc.poll()
            if rc is not None:
                m.unmounted = True
                lazy_unmount(mnt)
                pytest.fail("agentbayfs exited with status %s before mounting; log:\n%s"
                            % (rc, m.log_text()))
            if os.path.ismount(mnt):
                return m
            if time.monotonic() > deadline:
                m._abort()
                m.unmounted = True
                pytest.fail("%s was not mounted within %.0f s; log:\n%s"
                            % (mnt, MOUNT_WAIT, m.log_text()))
            time.sleep(0.05)

    def teardown(self):
        problems = []
        for m in reversed(self.mounts):
            try:
                m.unmount()
            except BaseException as e:  # keep unmounting the others
                problems.append(str(e))
        for m in self.mounts:
            # Captured by pytest and shown only when the test fails.
            lines = m.log_text().splitlines()
            print("----- %s (%d lines, last 200 shown) -----" % (m.log, len(lines)))
            print("\n".join(lines[-200:]))
            bad = []
            for line in m.log_text().splitlines()[1:]:
                if LOG_BAD.search(line) and (TOOL_REPORT.match(line)
                                             or not any(p.search(line) for p in self.allowed)):
                    bad.append(line)
            if bad:
                problems.append("unexpected lines in the daemon log %s:\n  %s"
                                % (os.path.basename(m.log), "\n  ".join(bad[:20])))
        if problems:
            pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.fixture
def bin_path():
    """The agentbayfs binary (fails if it has not been built)."""
    return require_binary()


@pytest.fixture
def mount():
    """Factory fixture: mount(opts=[...], store=..., mnt=...) -> Mount."""
    require_fuse()
    base = tempfile.mkdtemp(prefix="agentbayfs-test-")
    factory = MountFactory(base)
    ok = False
    try:
        yield factory
    finally:
        try:
            factory.teardown()
            ok = True
        finally:
            if any(is_mounted(m.mnt) for m in factory.mounts):
                pass  # never delete through a live mount
            elif ok:
                shutil.rmtree(base, ignore_errors=True)
            else:
                sys.stderr.write("agentbayfs test directory kept: %s\n" % base)


@pytest.fixture
def fs(mount):
    """A mounted agentbayfs with default options (fresh store)."""
    return mount()


@pytest.fixture
def tmpdir_outside(tmp_path):
    """A scratch directory outside the mount (source files for cp/mv)."""
    return str(tmp_path)

"""Containment: the hostile scripts of tests/hostile/ stay inside the local
backend's sandbox, are stopped by its limits, leave no process behind, and
neither hurt the daemon nor the other runs.

Each script prints "BLOCKED: ..." when the system refused it and "ESCAPED: ..."
when an attack worked; "ESCAPED" must never appear in any result file.  The
processes of a mount's runs are followed from a thread while the test runs
(by parent, by the script's unique name in their command line, and by their
pid namespace), so that what is left after a run is found even when it was
reparented away from the daemon, without mistaking the sandboxes of other
mounts (which use the same uids) for ours.
"""

import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import REPO_ROOT

HOSTILE = os.path.join(REPO_ROOT, "tests", "hostile")
LOCAL_UID_BASE = 2147352576   # src/local.h
UID_SPAN = 1 << 16            # src/run_uids.h
GUARD_COMM = "agentbayfs-gd"  # src/run_uids.c
READ_SYSCALL = {"x86_64": 0, "aarch64": 63}.get(platform.machine(), 0)
RECVMSG_SYSCALL = {"x86_64": 47, "aarch64": 212}.get(platform.machine(), 47)
IS_ROOT = os.geteuid() == 0
HAVE_NODE = shutil.which("node") is not None
CLK_TCK = os.sysconf("SC_CLK_TCK")
HOME_SECRET_NAME = "agentbayfs-test-secret"

needs_root = pytest.mark.skipif(not IS_ROOT, reason="the per-run uid and -o max_procs need root")
LANGS = [pytest.param("py", id="py"),
         pytest.param("js", id="js", marks=pytest.mark.skipif(not HAVE_NODE, reason="node is not installed"))]

BENIGN = """import subprocess, time
print(subprocess.run(["/bin/echo", "child ok"], stdout=subprocess.PIPE, text=True).stdout.strip())
with open("/tmp/benign", "w") as f:
    f.write("b" * 100000)
data = bytearray(32 << 20)
time.sleep(0.3)
print("BENIGN OK %s")
"""


def token():
    return os.urandom(4).hex()


def render(script, subs):
    """The text of tests/hostile/SCRIPT with its @NAME@ placeholders replaced."""
    with open(os.path.join(HOSTILE, script)) as f:
        text = f.read()
    for k, v in subs.items():
        text = text.replace("@%s@" % k, str(v))
    left = re.findall(r"@[A-Z_]+@", text)
    assert not left, "%s: placeholders not given: %s" % (script, left)
    return text


def first_line(text):
    return text.split("\n", 1)[0]


# ----------------------------------------------------------------------------
# Following the processes of the runs
# ----------------------------------------------------------------------------

class Proc:
    __slots__ = ("pid", "ppid", "uid", "state", "start", "pidns", "nspid", "cmd")

    def __init__(self, pid, ppid, uid, state, start, pidns, nspid, cmd):
        self.pid, self.ppid, self.uid, self.state = pid, ppid, uid, state
        self.start, self.pidns, self.nspid, self.cmd = start, pidns, nspid, cmd

    def __repr__(self):
        cmd = " ".join(self.cmd.split())
        if len(cmd) > 140:
            cmd = cmd[:60] + " ... " + cmd[-70:]
        return "pid %d (pid %d in its namespace) ppid %d uid %d %s: %s" % (
            self.pid, self.nspid, self.ppid, self.uid, self.state, cmd)


def boot_ticks():
    with open("/proc/uptime") as f:
        return float(f.read().split()[0]) * CLK_TCK


def snapshot():
    """Every process of the machine: pid -> Proc."""
    procs = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            # The command line first: a child of the daemon changes its uid
            # before it execs bubblewrap, never after.
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
            with open("/proc/%s/status" % d) as f:
                status = f.read()
            uid = int(re.search(r"^Uid:\s+(\d+)", status, re.M).group(1))
            nspid = int(re.search(r"^NSpid:\s+([\d\t ]+)$", status, re.M).group(1).split()[-1])
        except (OSError, AttributeError, ValueError):
            continue
        try:
            pidns = os.readlink("/proc/%s/ns/pid" % d)
        except OSError:
            pidns = None   # gone meanwhile
        # The daemon's guard (src/run_uids.h) is the daemon's, not a run's.
        if stat[stat.index("(") + 1:stat.rindex(")")] == GUARD_COMM:
            continue
        rest = stat[stat.rindex(")") + 2:].split()
        procs[int(d)] = Proc(int(d), int(rest[1]), uid, rest[0], int(rest[19]), pidns, nspid, cmd)
    return procs


class SandboxWatch:
    """Follows the processes of the runs of the mounts it is given.

    A process is a run's when its parent is the daemon, when its command line
    holds "/work/NAME" of a script saved through watch.name() (bubblewrap and
    the interpreter have it), when it descends from such a process, or when it
    lives in the pid namespace of such a process (a sandbox's processes live
    as long as its init, which has the name).  Namespaces are remembered with
    the time they were last seen, so that one freed and reused by another
    mount is not mistaken for ours."""

    def __init__(self):
        self.daemons = {}          # pid -> its command line
        self.names = set()
        self.seen_ns = {}          # pid namespace -> boot ticks when last seen ours
        self.seen = {}             # pid -> Proc, every process of ours ever seen
        self.host_ns = os.readlink("/proc/self/ns/pid")
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def follow(self, m):
        with self.lock:
            self.daemons[m.proc.pid] = " ".join(m.proc.args)
        return m

    def name(self, base, ext):
        """A unique script name for BASE (the token makes it findable in ps)."""
        n = "%s_%s.%s" % (base, token(), ext)
        with self.lock:
            self.names.add(n)
        return n

    def ours(self, procs):
        with self.lock:
            daemons = dict(self.daemons)
            needles = ["/work/" + n for n in self.names]
        now = boot_ticks()
        mine = set()
        for p in procs.values():
            if p.pid in daemons or p.pid == os.getpid():
                continue
            if p.ppid in daemons or any(n in p.cmd for n in needles):
                mine.add(p.pid)
        with self.lock:
            for pid in mine:
                ns = procs[pid].pidns
                if ns and ns != self.host_ns:
                    self.seen_ns[ns] = now
            known = dict(self.seen_ns)
        live = {ns for ns, last in known.items()
                if any(p.pidns == ns and p.start <= last for p in procs.values())}
        mine |= {p.pid for p in procs.values() if p.pidns in live and p.pid not in daemons}
        grew = True
        while grew:
            more = {p.pid for p in procs.values() if p.ppid in mine and p.pid not in mine}
            mine |= more
            grew = bool(more)
        with self.lock:
            for pid in mine:
                self.seen.setdefault(pid, procs[pid])
        return [procs[pid] for pid in sorted(mine)]

    def _loop(self):
        while not self.stop.wait(0.03):
            try:
                self.ours(snapshot())
            except Exception:  # a process vanishing mid-read; try again
                pass

    @staticmethod
    def below(procs, pid):
        """The processes under PID."""
        out, todo = [], [pid]
        while todo:
            parent = todo.pop()
            kids = [q for q in procs.values() if q.ppid == parent]
            out += kids
            todo += [q.pid for q in kids]
        return out

    @staticmethod
    def waits_in(pid, call, fd):
        """PID is blocked in system call CALL on descriptor FD."""
        try:
            with open("/proc/%d/syscall" % pid) as f:
                words = f.read().split()
        except OSError:
            return False
        return words[:2] == [str(call), hex(fd)]

    @staticmethod
    def idle_spares(procs):
        """The pids of warm sandboxes waiting for a script (-o warm): an
        interpreter started with the "warm" argument, blocked reading fd 4,
        the processes of its pid namespace, and the bubblewrap above them;
        and so of idle fork servers."""
        idle = set()
        for p in procs.values():
            # A fork server (-o forkserver=on) with no run: in its pid
            # namespace only bubblewrap's init and runs set up ahead, each
            # an A whose C (in a pid namespace of its own) waits on fd 5.
            if p.cmd.endswith(" zygote"):
                members = [q for q in procs.values() if q.pidns == p.pidns]
                here = {q.pid for q in members}
                for a in members:
                    if a.pid == p.pid or a.nspid == 1:
                        continue
                    below = SandboxWatch.below(procs, a.pid)
                    if not any(SandboxWatch.waits_in(c.pid, RECVMSG_SYSCALL, 5) for c in below):
                        break
                    here |= {q.pid for q in below}
                else:
                    idle |= here
                continue
            if not p.cmd.endswith(" warm"):
                continue
            try:
                with open("/proc/%d/syscall" % p.pid) as f:
                    call = f.read().split()
            except OSError:
                continue
            if call[:2] == [str(READ_SYSCALL), "0x4"]:
                idle |= {q.pid for q in procs.values() if q.pidns == p.pidns}
        idle |= {q.ppid for q in procs.values() if q.pid in idle and q.nspid == 1}
        return idle

    def leftovers(self, grace=1.5):
        """Processes of ours still there after GRACE s (for the kernel to tear a sandbox down).

        A zombie counts only when the daemon is its parent (the daemon failed
        to reap it): bubblewrap's init is reaped by the machine's init once
        the outer bubblewrap has gone, which may take a while."""
        deadline = time.monotonic() + grace
        while True:
            with self.lock:
                daemons = set(self.daemons)
            procs = snapshot()
            spares = self.idle_spares(procs)
            left = [p for p in self.ours(procs) if (p.state != "Z" or p.ppid in daemons)
                    and p.pid not in spares]
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.05)

    def assert_no_leftovers(self, what="the run", grace=1.5):
        left = self.leftovers(grace)
        assert not left, "processes left %.1f s after %s ended:\n  %s" % (
            grace, what, "\n  ".join(map(repr, left)))

    def assert_sandbox_uids(self):
        """Every sandboxed process seen ran as a uid of the run range, never root."""
        with self.lock:
            seen = list(self.seen.values())
            daemon_cmds = set(self.daemons.values())
        # Between fork and exec the child still has the daemon's command line.
        bad = [p for p in seen if p.cmd not in daemon_cmds and p.state != "Z"
               and not LOCAL_UID_BASE <= p.uid < LOCAL_UID_BASE + UID_SPAN]
        assert not bad, "sandboxed processes outside the run uid range:\n  %s" % "\n  ".join(map(repr, bad))

    def close(self):
        """Stops following; kills (by pid) whatever of ours is still there."""
        self.stop.set()
        self.thread.join(5)
        for p in self.ours(snapshot()):
            if p.state != "Z":
                try:
                    os.kill(p.pid, signal.SIGKILL)
                except OSError:
                    pass


@pytest.fixture
def watch():
    w = SandboxWatch()
    try:
        yield w
    finally:
        w.close()


# ----------------------------------------------------------------------------
# Running an attack
# ----------------------------------------------------------------------------

class Result:
    def __init__(self, m, name):
        self.name = name
        self.stem = name.rsplit(".", 1)[0]
        self.st = m.status(self.stem)
        self.out = m.read(self.stem + ".out")
        self.err = m.read(self.stem + ".err")
        self.error = m.read(self.stem + ".error")
        self.status_text = m.read(self.stem + ".status")

    def all_text(self):
        return "\n".join((self.out, self.err, self.error, self.status_text))

    def describe(self):
        return "%s: status %s\n--- out (head)\n%s\n--- err (head)\n%s\n--- error\n%s" % (
            self.name, self.st, self.out[:3000], self.err[:1500], self.error[:1500])


def mount_watched(mount, watch, opts=(), env=None):
    return watch.follow(mount(opts=list(opts), env=env))


def start_benign(m, watch, directory="ok"):
    os.makedirs(m.path(directory), exist_ok=True)
    name = "%s/%s" % (directory, watch.name("benign", "py"))
    mark = token()
    m.write(name, BENIGN % mark)
    return name, mark


def check_benign(m, name, mark, timeout=30):
    stem = name.rsplit(".", 1)[0]
    st = m.wait_run(stem, 1, timeout)
    out = m.read(stem + ".out")
    assert st["state"] == "succeeded" and out == "child ok\nBENIGN OK %s\n" % mark, \
        "a benign script run beside the attack was disturbed: %s\nout: %r\nerror: %s" % (
            st, out, m.read(stem + ".error"))


def attack(m, watch, script, subs=None, benign=True, directory="h", timeout=40):
    """Saves tests/hostile/SCRIPT into DIRECTORY of mount M under a unique
    name (placeholders from SUBS, TOKEN added), with a benign script saved at
    the same time in another directory; waits for both; returns the Result."""
    base, ext = script.rsplit(".", 1)
    os.makedirs(m.path(directory), exist_ok=True)
    name = "%s/%s" % (directory, watch.name(base, ext))
    subs = dict(subs or {})
    subs.setdefault("TOKEN", token())
    m.write(name, render(script, subs))
    side = start_benign(m, watch) if benign else None
    m.wait_run(name.rsplit(".", 1)[0], 1, timeout)
    if side:
        check_benign(m, *side, timeout=timeout)
    return Result(m, name)


def assert_contained(res, *blocked):
    """No ESCAPED anywhere; each of BLOCKED (label prefixes) was refused."""
    text = res.all_text()
    assert "ESCAPED" not in text, "the attack worked:\n%s" % res.describe()
    for label in blocked:
        assert "BLOCKED: " + label in res.out, "no 'BLOCKED: %s' line:\n%s" % (label, res.describe())


def assert_done(res, what):
    assert res.st["state"] == "succeeded", res.describe()
    assert "DONE %s" % what in res.out, res.describe()


def assert_healthy(m, watch):
    """The daemon is up and a normal script saved now runs normally."""
    m.check_alive()
    name = "after/" + watch.name("normal", "py")
    os.makedirs(m.path("after"), exist_ok=True)
    st = m.save_and_wait(name, "print('fine', 6 * 7)\n", timeout=20)
    stem = name[:-3]
    assert st["state"] == "succeeded", "a normal script after the attack: %s\nerror: %s" % (
        st, m.read(stem + ".error"))
    assert m.read(stem + ".out") == "fine 42\n"


@pytest.fixture
def secrets():
    """A distinctive secret in root's home (removed afterwards); the same
    value goes into the store and the daemon's environment by the tests."""
    value = "agentbayfs-secret-" + os.urandom(12).hex()
    home = os.path.expanduser("~")
    path = os.path.join(home, HOME_SECRET_NAME)
    with open(path, "w") as f:
        f.write(value + "\n")
    os.chmod(path, 0o600)
    try:
        yield value, path
    finally:
        os.unlink(path)


def secret_subs(m, home_secret):
    return {"STORE": m.store, "MOUNTPOINT": m.mnt, "STORE_SECRET": m.store_path("secret.txt"),
            "HOME_SECRET": home_secret, "DAEMON_PID": m.proc.pid}


# ----------------------------------------------------------------------------
# Network
# ----------------------------------------------------------------------------

class Listener:
    """A TCP listener on 127.0.0.1 and an abstract unix socket, recording connections."""

    def __init__(self):
        self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen(8)
        self.port = self.tcp.getsockname()[1]
        self.abstract = "agentbayfs-test-" + token()
        self.unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.unix.bind("\0" + self.abstract)
        self.unix.listen(8)
        self.accepted = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._accept, args=(s,), daemon=True)
                        for s in (self.tcp, self.unix)]
        for t in self.threads:
            t.start()

    def _accept(self, s):
        s.settimeout(0.1)
        while not self.stop.is_set():
            try:
                conn, peer = s.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.accepted.append(peer or "abstract")
            conn.close()

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(2)
        self.tcp.close()
        self.unix.close()


@pytest.mark.parametrize("lang", LANGS)
def test_network_unreachable(mount, watch, lang):
    """A script reaches neither a TCP listener on the host's 127.0.0.1 nor an abstract unix socket, resolves no name, and sees only its own lo."""
    lis = Listener()
    try:
        m = mount_watched(mount, watch)
        res = attack(m, watch, "network." + lang, {"PORT": lis.port, "ABSTRACT": lis.abstract})
        time.sleep(0.2)
        assert not lis.accepted, "the host's listener got connections from the sandbox: %s\n%s" % (
            lis.accepted, res.describe())
    finally:
        lis.close()
    assert_done(res, "network")
    assert_contained(res, "tcp 127.0.0.1 port %d" % lis.port, "tcp ::1 port", "abstract unix socket",
                     "resolve example.com", "resolve dns.google", "interfaces: only lo")
    watch.assert_no_leftovers()
    assert_healthy(m, watch)


# ----------------------------------------------------------------------------
# Reading and writing outside
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("lang", LANGS)
def test_read_outside(mount, watch, secrets, lang):
    """The store, the mountpoint, root's home, /etc/shadow and the daemon's /proc (environ, mem) are out of reach; a secret there never shows in any result."""
    secret, home_secret = secrets
    m = mount_watched(mount, watch, env={"AGENTBAYFS_TEST_SECRET": secret})
    m.write("secret.txt", secret + "\n")
    with open(m.store_path("secret.txt")) as f:
        assert f.read() == secret + "\n"
    subs = secret_subs(m, home_secret)
    res = attack(m, watch, "read_outside." + lang, subs)
    assert_done(res, "read_outside")
    pid = m.proc.pid
    assert_contained(res, "read " + subs["STORE_SECRET"], "read " + home_secret, "read /etc/shadow",
                     "read /proc/%d/environ" % pid, "read /proc/%d/mem" % pid, "list " + m.store,
                     "list " + m.mnt, "list /root", "process list")
    assert secret not in res.all_text(), "the secret leaked:\n%s" % res.describe()
    watch.assert_no_leftovers()
    assert_healthy(m, watch)


WRITE_TARGETS = ("/", "/usr", "/usr/lib", "/usr/bin", "/etc", "/proc")


@pytest.mark.parametrize("lang", LANGS)
def test_write_outside(mount, watch, lang):
    """Creating or changing files in /, /usr, /etc, /root, the store or the mountpoint fails, and nothing appears there on the host."""
    m = mount_watched(mount, watch)
    tok = token()
    env_stat = os.stat("/usr/bin/env")
    res = attack(m, watch, "write_outside." + lang,
                 {"STORE": m.store, "MOUNTPOINT": m.mnt, "TOKEN": tok})
    name = "agentbayfs-escape-" + tok
    found = []
    for d in WRITE_TARGETS + (os.path.expanduser("~"), m.store):
        for n in (name, name + ".d"):
            p = os.path.join(d, n)
            if os.path.lexists(p):
                found.append(p)
                if os.path.isdir(p) and not os.path.islink(p):
                    shutil.rmtree(p)
                else:
                    os.unlink(p)
    found += [os.path.join(m.mnt, n) for n in m.listdir() if n.startswith(name)]
    found += [p for p in ("/usr/bin/env." + name,) if os.path.lexists(p)]
    assert not found, "the sandbox created files on the host: %s" % found
    assert os.path.exists("/usr/bin/env") and os.stat("/usr/bin/env").st_mode == env_stat.st_mode
    assert_done(res, "write_outside")
    assert_contained(res, "create /usr/" + name, "create /etc/" + name, "create /" + name,
                     "create /root/" + name, "create %s/%s" % (m.store, name),
                     "create %s/%s" % (m.mnt, name), "append to /usr/bin/python3",
                     "chmod /usr/bin/env")
    watch.assert_no_leftovers()
    assert_healthy(m, watch)


@pytest.mark.parametrize("lang", LANGS)
def test_tmp_and_work_are_private_to_a_run(mount, watch, lang):
    """Files a run leaves in /tmp, /work or /dev/shm (and a writer it leaves running) are seen neither by a later run nor on the host."""
    m = mount_watched(mount, watch)
    tok = token()
    plant = attack(m, watch, "plant." + lang, {"TOKEN": tok})
    assert_done(plant, "plant")
    assert "INFO: planted /tmp/agentbayfs-plant-" in plant.out, plant.describe()
    watch.assert_no_leftovers("the planting run")
    time.sleep(0.3)
    for directory in ("h", "h2"):
        peek = attack(m, watch, "peek." + lang, {"TOKEN": tok}, benign=False, directory=directory)
        assert_done(peek, "peek")
        assert_contained(peek, "/tmp/agentbayfs-plant-" + tok, "/work/agentbayfs-plant-" + tok,
                         "/tmp/agentbayfs-plant-late-" + tok, "fresh /tmp and /work")
    on_host = [p for p in ("/tmp/agentbayfs-plant-" + tok, "/tmp/agentbayfs-plant-late-" + tok,
                           "/tmp/agentbayfs-plant-dir-" + tok, "/work/agentbayfs-plant-" + tok,
                           os.path.join(m.store, "h", "agentbayfs-plant-" + tok))
               if os.path.lexists(p)]
    assert not on_host, "a run's private files appeared on the host: %s" % on_host
    assert not [n for n in m.listdir("h") if "plant-" in n], m.listdir("h")
    watch.assert_no_leftovers()
    assert_healthy(m, watch)


# ----------------------------------------------------------------------------
# Limits
# ----------------------------------------------------------------------------

@needs_root
@pytest.mark.deadline(40)
@pytest.mark.parametrize("lang", LANGS)
def test_fork_bomb(mount, watch, lang):
    """A fork bomb is held to -o max_procs, stopped at the time limit with every process gone, while a run beside it works."""
    m = mount_watched(mount, watch, ["max_procs=20", "timeout=3", "jobs=4"])
    res = attack(m, watch, "fork_bomb." + lang, {"MAX_PROCS": 20})
    assert res.st["state"] == "timed_out", res.describe()
    assert first_line(res.error).startswith("TimeoutError: "), res.describe()
    assert_contained(res, "fork: refused")
    assert "INFO: " in res.out and " processes in the sandbox" in res.out, res.describe()
    watch.assert_no_leftovers()
    watch.assert_sandbox_uids()
    assert_healthy(m, watch)


@needs_root
@pytest.mark.deadline(40)
def test_fork_bomb_does_not_starve_another_mount(mount, watch):
    """A fork bomb in one mount does not make the runs of another mount fail
    (each daemon claims uids of its own, and the process limit is per uid)."""
    a = mount_watched(mount, watch, ["max_procs=20", "timeout=4"])
    b = mount_watched(mount, watch, ["max_procs=20", "timeout=10"])
    bomb = "h/" + watch.name("fork_bomb", "py")
    os.makedirs(a.path("h"))
    a.write(bomb, render("fork_bomb.py", {"MAX_PROCS": 20}))
    time.sleep(1.2)   # the bomb has used up its processes by now
    assert a.status(bomb[:-3])["state"] == "running"
    name, mark = start_benign(b, watch)
    try:
        check_benign(b, name, mark)
    finally:
        a.wait_run(bomb[:-3], 1, 20)
        watch.assert_no_leftovers()


@pytest.mark.parametrize("lang", LANGS)
def test_memory_hog(mount, watch, lang):
    """Unbounded allocation under -o memory=256M ends the run with an .error that names the memory limit."""
    # Was a bug (js), fixed: node cannot even start under a 256 MiB address space ("Fatal
    # process OOM in Failed to reserve virtual memory for CodeRange"), and
    # the run is reported as "SandboxError: the sandbox could not start
    # (exit status -1): ...; check that bubblewrap works for this user (user
    # namespaces enabled), or mount with -o sandbox=none": it blames
    # bubblewrap instead of -o memory.
    m = mount_watched(mount, watch, ["memory=256M", "timeout=20"])
    # Node's warm sandboxes cannot start either: the pool says so and stops.
    m.allow_log(r"warm node sandboxes keep ending before use: Fatal process OOM")
    res = attack(m, watch, "memory_hog." + lang, {"MEMORY_MB": 256})
    assert res.st["state"] == "failed", res.describe()
    assert_contained(res)
    line = first_line(res.error)
    assert res.st["error"]["name"] in ("MemoryError", "RangeError", "KilledBySignal", "Error"), res.describe()
    assert re.search(r"memory|alloc", line, re.I), "the .error does not say it is about memory: %r\n%s" % (
        line, res.describe())
    watch.assert_no_leftovers()
    assert_healthy(m, watch)


@pytest.mark.parametrize("lang", LANGS)
def test_print_forever(mount, watch, lang):
    """Printing forever under -o max_output=100K stops the run with OutputLimitExceeded and a truncated output of at most 100 KiB."""
    m = mount_watched(mount, watch, ["max_output=100K", "timeout=20"])
    res = attack(m, watch, "print_forever." + lang)
    assert res.st["state"] == "failed", res.describe()
    assert res.st["error"]["name"] == "OutputLimitExceeded", res.describe()
    assert first_line(res.error).startswith("OutputLimitExceeded: "), res.describe()
    assert res.st["truncated"] is True, res.describe()
    assert 0 < len(res.out) <= 100 * 1024, len(res.out)
    assert res.st["stdout_bytes"] <= 100 * 1024, res.st
    assert set(res.out) <= {"y", "\n"}
    watch.assert_no_leftovers()
    assert_healthy(m, watch)


@pytest.mark.deadline(30)
@pytest.mark.parametrize("script", ["sleep_forever", "busy_loop", "ignore_sigterm"])
@pytest.mark.parametrize("lang", LANGS)
def test_stopped_at_time_limit(mount, watch, lang, script):
    """Sleeping forever, spinning, or ignoring SIGTERM: the run is stopped at -o timeout=2 as timed_out, with nothing left running."""
    m = mount_watched(mount, watch, ["timeout=2"])
    res = attack(m, watch, "%s.%s" % (script, lang))
    assert res.st["state"] == "timed_out", res.describe()
    assert first_line(res.error).startswith("TimeoutError: "), res.describe()
    assert 1900 <= res.st["duration_ms"] <= 6000, res.st
    assert_contained(res)
    watch.assert_no_leftovers()
    assert_healthy(m, watch)


def test_resource_limits(mount, watch):
    """Filling /tmp and /work, writing a file over -o max_file_size and opening files without end are each refused, and the run carries on."""
    m = mount_watched(mount, watch, ["tmp_size=8M", "max_file_size=3M", "max_open_files=64"])
    res = attack(m, watch, "resources.py")
    assert_done(res, "resources")
    assert_contained(res, "file size: EFBIG at 3 MiB", "fill /tmp: ENOSPC", "fill /work: ENOSPC",
                     "open files: EMFILE")
    watch.assert_no_leftovers()
    assert_healthy(m, watch)


# ----------------------------------------------------------------------------
# Processes that try to outlive the run or hit others
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("lang", LANGS)
def test_background_children_die_with_the_run(mount, watch, lang):
    """Detached, setsid'd children (one holding the output pipe) are gone when the run ends and print nothing afterwards."""
    m = mount_watched(mount, watch, ["timeout=20"])
    res = attack(m, watch, "background." + lang)
    assert_done(res, "background")
    assert res.st["duration_ms"] < 6000, res.st
    watch.assert_no_leftovers(grace=1.0)
    time.sleep(1.0)   # the children would print at 1.5 s
    again = Result(m, res.name)
    assert again.out == res.out and again.st["run"] == 1, again.describe()
    assert_contained(again)
    watch.assert_sandbox_uids()
    assert_healthy(m, watch)


@needs_root
@pytest.mark.parametrize("lang", LANGS)
def test_kill_parent_and_everyone(mount, watch, lang):
    """kill(parent) and kill(-1, SIGKILL) from a script reach neither the daemon nor host processes running as the sandbox uids."""
    m = mount_watched(mount, watch, ["jobs=2", "timeout=20"])
    sentinels = []

    def as_uid(uid):
        def switch():
            os.setgid(uid)
            os.setuid(uid)
        return switch
    # The uids of this mount: the 64-uid chunk its first run's uid is in.
    first = LOCAL_UID_BASE
    if IS_ROOT:
        m.save_and_wait("uid.py", "import os\nprint(os.getuid())\n")
        first = int(m.read("uid.out"))
        first -= (first - LOCAL_UID_BASE) % 64
    try:
        for i in range(8):
            uid = first + i
            sentinels.append(subprocess.Popen(["sleep", "60"], preexec_fn=as_uid(uid),
                                              stdin=subprocess.DEVNULL))
        res = attack(m, watch, "kill_parent." + lang)
        dead = [p.pid for p in sentinels if p.poll() is not None]
        assert not dead, "host processes of the sandbox uids were killed: %s" % dead
    finally:
        for p in sentinels:
            p.kill()
            p.wait()
    assert_done(res, "kill_parent")
    assert_contained(res, "kill: the script is still running")
    watch.assert_no_leftovers()
    assert_healthy(m, watch)


@pytest.mark.parametrize("lang", LANGS)
def test_huge_argv_and_environment(mount, watch, lang):
    """A subprocess with a huge argv or environment fails with E2BIG; the run and the daemon carry on."""
    m = mount_watched(mount, watch, ["timeout=30"])
    res = attack(m, watch, "huge_args." + lang)
    assert_done(res, "huge_args")
    assert_contained(res)
    assert re.search(r"(BLOCKED|INFO): one 4 MiB argument: (E2BIG|Argument list too long)", res.out), \
        res.describe()
    watch.assert_no_leftovers()
    assert_healthy(m, watch)


# ----------------------------------------------------------------------------
# Escape attempts
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("lang", LANGS)
def test_proc_root_and_cwd_tricks(mount, watch, secrets, lang):
    """/proc/self/root, /proc/1/root, /proc/self/cwd, inherited descriptors and open_by_handle_at lead to no host file."""
    secret, home_secret = secrets
    m = mount_watched(mount, watch, env={"AGENTBAYFS_TEST_SECRET": secret})
    m.write("secret.txt", secret + "\n")
    res = attack(m, watch, "proc_escape." + lang, secret_subs(m, home_secret))
    assert_done(res, "proc_escape")
    expected = ["read /proc/self/root" + home_secret, "read /proc/1/root" + home_secret,
                "read /proc/self/cwd/../.." + home_secret, "read /proc/1/root" + m.store_path("secret.txt"),
                # /proc/1 (bubblewrap's init) is hidden altogether.
                "list /proc/1/root: ENOENT"]
    if lang == "py":
        expected.append("open_by_handle_at")
    assert_contained(res, *expected)
    assert secret not in res.all_text(), "the secret leaked:\n%s" % res.describe()
    watch.assert_no_leftovers()
    assert_healthy(m, watch)


@pytest.mark.parametrize("sandbox", ["bwrap", "none"])
@pytest.mark.parametrize("lang", LANGS)
def test_planted_symlinks_not_followed(mount, watch, tmp_path, lang, sandbox):
    """Symlinks to host paths planted in the working directory and /tmp (even the working directory swapped for one) are not followed by the cleanup."""
    canary_dir = tmp_path / "canary"
    (canary_dir / "sub").mkdir(parents=True)
    canary = canary_dir / "keep.txt"
    canary.write_text("keep me\n")
    (canary_dir / "sub" / "deep.txt").write_text("deep\n")
    tok = token()
    m = mount_watched(mount, watch, ["sandbox=" + sandbox])
    res = None
    try:
        res = attack(m, watch, "symlink_plant." + lang,
                     {"CANARY_DIR": canary_dir, "CANARY_FILE": canary, "TOKEN": tok}, benign=False)
        workdir = re.search(r"INFO: working directory (\S+)", res.out).group(1)
        time.sleep(0.3)
        assert canary.read_text() == "keep me\n", "the canary file was changed or removed"
        assert (canary_dir / "sub" / "deep.txt").read_text() == "deep\n"
        assert sorted(os.listdir(canary_dir)) == ["keep.txt", "sub"], os.listdir(canary_dir)
        assert_done(res, "symlink_plant")
        assert_contained(res)
        if sandbox == "none":
            assert "info: canary visible from here: true" in res.out.lower(), res.describe()
            assert not os.path.lexists(workdir), "the run's directory %s was not removed" % workdir
        else:
            assert "info: canary visible from here: false" in res.out.lower(), res.describe()
    finally:
        if sandbox == "none" and res is not None:
            # What the unsandboxed script itself left in the real /tmp.
            link = "/tmp/agentbayfs-canary-" + tok
            if os.path.islink(link):
                os.unlink(link)
            moved = re.search(r"INFO: working directory (\S+)", res.out).group(1) + ".moved"
            if os.path.isdir(moved) and not os.path.islink(moved):
                shutil.rmtree(moved)
    watch.assert_no_leftovers()
    assert_healthy(m, watch)


@pytest.mark.parametrize("lang", LANGS)
def test_no_terminal_to_inject_into(mount, watch, lang):
    """TIOCSTI on the standard descriptors and on /dev/tty fails: a run has no terminal and no controlling terminal."""
    m = mount_watched(mount, watch)
    res = attack(m, watch, "tiocsti." + lang, benign=False)
    assert_done(res, "tiocsti")
    blocked = ["open /dev/tty"] + (["TIOCSTI on fd 0", "TIOCSTI on fd 1", "TIOCSTI on fd 2"]
                                   if lang == "py" else ["fd 0: not a terminal"])
    assert_contained(res, *blocked)
    watch.assert_no_leftovers()


@pytest.mark.parametrize("lang", LANGS)
def test_no_new_namespaces(mount, watch, lang):
    """unshare of a user namespace (os-level and unshare -U) and of any other namespace fails."""
    m = mount_watched(mount, watch)
    res = attack(m, watch, "userns." + lang, benign=False)
    assert_done(res, "userns")
    blocked = ["unshare -U true", "unshare -r id -u"]
    if lang == "py":
        blocked += ["unshare(user)", "unshare(mount)", "unshare(net)"]
    assert_contained(res, *blocked)
    watch.assert_no_leftovers()


@pytest.mark.parametrize("lang", LANGS)
def test_mount_refused(mount, watch, lang):
    """mount(2) and mount(8) (tmpfs, bind, read-write remount) and umount fail inside the sandbox."""
    m = mount_watched(mount, watch)
    res = attack(m, watch, "mount." + lang, benign=False)
    assert_done(res, "mount")
    blocked = ["mount -t tmpfs none /tmp/m", "umount /work"]
    if lang == "py":
        blocked += ["mount tmpfs on /tmp/m", "mount remount / read-write", "umount /usr"]
    assert_contained(res, *blocked)
    watch.assert_no_leftovers()


@pytest.mark.parametrize("lang", LANGS)
def test_no_privileges(mount, watch, lang):
    """A run has no capabilities and cannot become root (setuid, setgroups, chroot, sethostname, mknod)."""
    m = mount_watched(mount, watch)
    res = attack(m, watch, "privileges." + lang, benign=False)
    assert_done(res, "privileges")
    blocked = ["CapEff: no capabilities", "CapBnd: no capabilities", "setuid(0)"]
    if lang == "py":
        blocked += ["setuid binaries: /usr is nosuid", "chroot", "mknod"]
    assert_contained(res, *blocked)
    if IS_ROOT:
        uid = int(re.search(r"INFO: uid (\d+)", res.out).group(1))
        assert LOCAL_UID_BASE <= uid < LOCAL_UID_BASE + UID_SPAN, res.out
        watch.assert_sandbox_uids()
    watch.assert_no_leftovers()


def test_ptrace_of_init_refused(mount, watch):
    """A script cannot ptrace, or read the memory of, the sandbox's init (pid 1):
    the seccomp filter refuses ptrace and process_vm_readv, and /proc/1/mem
    needs ptrace rights."""
    m = mount_watched(mount, watch, ["timeout=10"])
    res = attack(m, watch, "ptrace.py", benign=False)
    assert_done(res, "ptrace")
    assert_contained(res, "ptrace pid 1", "read /proc/1/mem", "process_vm_readv pid 1")
    watch.assert_no_leftovers()
    assert_healthy(m, watch)


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the injection is written for x86_64")
def test_ptrace_of_init_cannot_outlive_the_time_limit(mount, watch):
    """A script that makes the sandbox's init drop its parent-death signal is still gone after the time limit."""
    # Was a bug, fixed: it was not. kill_run() SIGKILLs only bubblewrap's outer process and
    # relies on --die-with-parent to take the sandbox's init (and with it
    # the pid namespace) down. The script ptraces init and makes it call
    # prctl(PR_SET_PDEATHSIG, 0); the run is reported timed_out, but the
    # sandbox's init and the script keep running, reparented to pid 1, with
    # no time limit.
    m = mount_watched(mount, watch, ["timeout=2"])
    res = attack(m, watch, "ptrace_init_outlive.py", benign=False)
    assert res.st["state"] == "timed_out", res.describe()
    assert_contained(res)
    watch.assert_no_leftovers("the timed out run")
    assert_healthy(m, watch)


# ----------------------------------------------------------------------------
# Runs cut short: cancelled by a newer save, or the daemon killed
# ----------------------------------------------------------------------------

@pytest.mark.deadline(40)
def test_cancelled_runs_leave_no_process(mount, watch):
    """Saves that cancel a run just as its sandbox starts leave no process of it behind."""
    # Was a bug, fixed: they did. kill_run() SIGKILLs bubblewrap's outer process and relies
    # on --die-with-parent for the rest, but bubblewrap's inner process (the
    # sandbox's init, pid 1 of the new pid namespace) sets its parent-death
    # signal only once the sandbox is set up. Killed before that, the outer
    # one leaves the init alive, reparented to the machine's pid 1, with the
    # script (or nothing) under it, forever (test_load's save races leave
    # such processes too). They also hold RLIMIT_NPROC slots of the uid.
    m = mount_watched(mount, watch, ["timeout=30"])
    os.makedirs(m.path("h"))
    code = render("sleep_forever.py", {})
    left = []
    for _ in range(4):
        name = "h/" + watch.name("sleep_forever", "py")
        for i in range(60):
            m.write(name, code)
            time.sleep(0.005 * (i % 8))
        m.write(name, "print('last')\n")
        st = m.wait_state(name[:-3], "succeeded", 20)
        assert m.read(name[:-3] + ".out") == "last\n", st
        left = watch.leftovers(grace=1.5)
        if left:
            break
    assert not left, "processes of cancelled runs left behind:\n  %s" % "\n  ".join(map(repr, left))
    assert_healthy(m, watch)


@needs_root
@pytest.mark.deadline(40)
def test_daemon_killed_leaves_no_sandbox(mount, watch):
    """kill -9 of the daemon while runs are starting leaves no sandbox process
    behind: a sandbox still being set up has no parent-death signal yet, but
    the daemon's guard process kills every process of its run uids."""
    left = []
    for delay in (0.0, 0.0, 0.002, 0.005, 0.01, 0.02) * 3:
        m = mount_watched(mount, watch, ["jobs=4", "timeout=30"])
        code = render("sleep_forever.py", {})
        for i in range(4):
            m.write(watch.name("sleep_forever", "py"), code)
        time.sleep(delay)
        m.kill9()
        left += watch.leftovers(grace=1.5)
        if left:
            break
    assert not left, "sandbox processes left after the daemon was killed:\n  %s" % "\n  ".join(map(repr, left))

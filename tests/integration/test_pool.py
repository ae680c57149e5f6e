"""The warm pool of the local backend (-o warm=N, -o warm_idle=SECONDS).

A spare is a bubblewrap sandbox whose interpreter was started with the extra
argument "warm" and waits, blocked reading fd 4, for the script of a run.
The tests find a mount's spares among the daemon's descendants (so that the
sandboxes of other mounts on the machine never count) and recognise an idle
one as test_containment.SandboxWatch.idle_spares does.  To prove that a run
was served by a given spare, the script prints its pid namespace
(/proc/self/ns/pid), which is the spare's own namespace as seen from the
host while the spare is alive, and the spare is gone once the run ended.
"""

import json
import os
import shutil
import signal
import socket
import threading
import time

import pytest

from conftest import FINAL_STATES, is_mounted, lazy_unmount, proc_stat, run_binary
from test_containment import IS_ROOT, LOCAL_UID_BASE, READ_SYSCALL, UID_SPAN, boot_ticks, snapshot

HAVE_NODE = shutil.which("node") is not None
needs_node = pytest.mark.skipif(not HAVE_NODE, reason="node is not installed")
LANGS = [pytest.param("py", id="py"), pytest.param("js", id="js", marks=needs_node)]

# How long a spare may take to start, and a sandbox to go, on a loaded machine.
SPARE_WAIT = 30.0
GONE_WAIT = 3.0
# Under sanitizers or valgrind the daemon is several times slower.
SLOW = 4.0 if os.environ.get("AGENTBAYFS_SANITIZED") else 1.0


@pytest.fixture
def mount(mount):
    """These tests are of the spares: Python's too, so without the fork
    server (test_forkserver), which takes their place."""
    class WithoutForkServer:
        def __call__(self, opts=None, **kw):
            return mount(opts=["forkserver=off"] + list(opts or []), **kw)

        def __getattr__(self, name):
            return getattr(mount, name)
    return WithoutForkServer()


# ----------------------------------------------------------------------------
# Finding a mount's sandboxes
# ----------------------------------------------------------------------------

def lang_of(cmd):
    """'py' or 'js' for the command line of an interpreter or of the
    bubblewrap around it (the interpreter follows bubblewrap's "--"), else None."""
    words = cmd.split(" ")
    if os.path.basename(words[0]) == "bwrap":
        if "--" not in words:
            return None
        words = words[words.index("--") + 1:]
    base = os.path.basename(words[0]) if words else ""
    if base.startswith("python"):
        return "py"
    if base.startswith("node"):
        return "js"
    return None


def is_bwrap(p):
    return os.path.basename(p.cmd.split(" ")[0]) == "bwrap"


def descendants(procs, root):
    """The processes below ROOT (the daemon), its guard excluded (snapshot skips it)."""
    kids = {}
    for p in procs.values():
        kids.setdefault(p.ppid, []).append(p)
    out, todo = [], [root]
    while todo:
        for c in kids.get(todo.pop(), []):
            out.append(c)
            todo.append(c.pid)
    return out


def blocked_on_fd4(pid):
    try:
        with open("/proc/%d/syscall" % pid) as f:
            call = f.read().split()
    except OSError:
        return False
    return call[:2] == [str(READ_SYSCALL), "0x4"]


class Pool:
    """What one look at the processes of a mount's daemon found."""

    def __init__(self, m):
        self.procs = snapshot()
        self.mine = descendants(self.procs, m.proc.pid)
        # Every warm sandbox (idle, starting, or just taken by a run): the
        # interpreters and bubblewraps whose command line ends with "warm".
        self.warm = [p for p in self.mine if p.cmd.endswith(" warm") and p.state != "Z"]
        # Idle spares: their interpreter, waiting for a script on fd 4.
        self.idle = [p for p in self.warm if not is_bwrap(p) and blocked_on_fd4(p.pid)]
        # One outer bubblewrap per sandbox, the daemon's child.
        self.sandboxes = [p for p in self.mine if p.ppid == m.proc.pid and is_bwrap(p) and p.state != "Z"]
        # Everything else under the daemon: runs, sandboxes going, zombies.
        spares = set()
        for p in self.idle:
            spares |= {q.pid for q in spare_tree(self, p)}
        self.others = [p for p in self.mine if p.pid not in spares]

    def idle_of(self, lang):
        return [p for p in self.idle if lang_of(p.cmd) == lang]

    def warm_sandboxes_of(self, lang):
        return [p for p in self.sandboxes if p.cmd.endswith(" warm") and lang_of(p.cmd) == lang]

    def describe(self):
        return "\n  ".join(repr(p) for p in self.mine) or "(no process under the daemon)"


def pidns(p):
    try:
        return os.readlink("/proc/%d/ns/pid" % p.pid)
    except OSError:
        return None


def alive(p):
    """P (a Proc seen earlier) is still there: same pid, same start time, not a zombie."""
    rest = proc_stat(p.pid)
    return bool(rest) and int(rest[19]) == p.start and rest[0] != "Z"


def wait_pool(m, pred, what, timeout=SPARE_WAIT):
    """Polls the daemon's processes until PRED(Pool) holds; returns that Pool."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        m.check_alive()
        pool = Pool(m)
        if pred(pool):
            return pool
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0f s waiting for %s; processes under the daemon:\n  %s"
                                 % (timeout * SLOW, what, pool.describe()))
        time.sleep(0.03)


def wait_full(m, counts, timeout=SPARE_WAIT):
    """Waits until the pool holds exactly COUNTS (lang -> n) idle spares and
    the daemon has no other child or descendant (no spare starting, no
    sandbox of a run still there, no zombie left unreaped)."""
    def full(pool):
        return not pool.others and all(len(pool.idle_of(l)) == n for l, n in counts.items())
    return wait_pool(m, full, "exactly %s idle spare(s)" % counts, timeout)


def hold_steady(m, counts, seconds=0.6):
    """For SECONDS, no language has more warm sandboxes than COUNTS says."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pool = Pool(m)
        for l, n in counts.items():
            have = pool.warm_sandboxes_of(l)
            assert len(have) <= n, "%s: %d warm sandboxes where %d are expected:\n  %s" % (
                l, len(have), n, pool.describe())
        time.sleep(0.05)


def wait_gone(procs, what, timeout=GONE_WAIT):
    """Waits until none of PROCS is alive; returns the time it took."""
    t0 = time.monotonic()
    deadline = t0 + timeout * SLOW
    while True:
        left = [p for p in procs if alive(p)]
        if not left:
            return time.monotonic() - t0
        if time.monotonic() > deadline:
            raise AssertionError("%s still there %.1f s later:\n  %s" % (
                what, timeout * SLOW, "\n  ".join(map(repr, left))))
        time.sleep(0.03)


def spare_tree(pool, interp):
    """Every process of the sandbox of the spare interpreter INTERP: the
    processes of its pid namespace and the bubblewrap above them."""
    ns = interp.pidns
    tree = [p for p in pool.procs.values() if p.pidns == ns and ns is not None]
    inits = {p.ppid for p in tree if p.nspid == 1}
    return tree + [p for p in pool.procs.values() if p.pid in inits]


def oldest_idle(pool, lang):
    """The idle spare of LANG a run takes next (the oldest)."""
    idle = pool.idle_of(lang)
    assert idle, "no idle %s spare:\n  %s" % (lang, pool.describe())
    return min(idle, key=lambda p: (p.start, p.pid))


class Sampler:
    """Looks at the daemon's processes from a thread every ~30 ms and keeps
    every process with "warm" at the end of its command line."""

    def __init__(self, m):
        self.m = m
        self.seen = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stop.wait(0.03):
            try:
                for p in Pool(self.m).warm:
                    self.seen.setdefault((p.pid, p.start), p)
            except Exception:  # a process vanishing mid-read
                pass

    def close(self):
        self.stop.set()
        self.thread.join(5)
        return list(self.seen.values())


def run_ok(m, name, code, timeout=30.0):
    """Saves script NAME, waits for its run; it must succeed. Returns (status, out)."""
    st = m.save_and_wait(name, code, timeout * SLOW)
    stem = name.rsplit(".", 1)[0]
    assert st["state"] == "succeeded", "%s: %s\nerror: %s" % (name, st, m.read(stem + ".error"))
    return st, m.read(stem + ".out")


WARMUP = {"py": ("warmup.py", "print('warm up')\n", "warm up\n"),
          "js": ("warmup.js", "console.log('warm up');\n", "warm up\n")}


def warm_up(m, lang):
    """A first run of LANG: its pool is in use from then on."""
    name, code, out = WARMUP[lang]
    assert run_ok(m, name, code)[1] == out


# ----------------------------------------------------------------------------
# 1. Spares per language in use
# ----------------------------------------------------------------------------

@pytest.mark.deadline(90)
@pytest.mark.parametrize("n", [1, 2])
def test_spares_only_for_languages_in_use(mount, n):
    """No spare exists before any run; after a .py run exactly N python spares
    wait (N = -o warm) and no node spare; after a .js run N node spares too."""
    m = mount(opts=["warm=%d" % n])
    sampler = Sampler(m)
    time.sleep(1.0)   # a negative: give a wrong spare the time to show up
    early = sampler.close()
    assert not early, "spares started before any run:\n  %s" % "\n  ".join(map(repr, early))

    warm_up(m, "py")
    wait_full(m, {"py": n})
    hold_steady(m, {"py": n, "js": 0})
    pool = wait_full(m, {"py": n, "js": 0})
    assert not pool.idle_of("js") and not pool.warm_sandboxes_of("js"), pool.describe()

    if not HAVE_NODE:
        return
    warm_up(m, "js")
    wait_full(m, {"py": n, "js": n})
    hold_steady(m, {"py": n, "js": n})
    wait_full(m, {"py": n, "js": n})


# ----------------------------------------------------------------------------
# Runs through a spare: no spare started meanwhile; time limit and cancel
# ----------------------------------------------------------------------------

LONG = {"py": ("long.py", "import time\ntime.sleep(1.5)\nprint('long done')\n"),
        "js": ("long.js", "setTimeout(() => console.log('long done'), 1500);\n")}


@pytest.mark.deadline(90)
@pytest.mark.parametrize("lang", LANGS)
def test_no_spare_started_while_a_run_goes(mount, lang):
    """A run takes the waiting spare; while it goes no new spare is started
    (that would take CPU from the run); once it has ended the pool fills
    again."""
    m = mount(opts=["warm=1"])
    warm_up(m, lang)
    pool = wait_full(m, {lang: 1})
    spare = oldest_idle(pool, lang)
    tree = spare_tree(pool, spare)
    taken = {p.pid for p in tree}
    name, code = LONG[lang]
    m.write(name, code)
    stem = name.rsplit(".", 1)[0]
    looks = 0
    while True:
        st = m.try_status(stem)
        if st and st.get("state") in FINAL_STATES:
            break
        pool = Pool(m)
        extra = [p for p in pool.warm if p.pid not in taken]
        # The daemon ends the run (final status) before it starts a spare:
        # one seen now is fine if the run ended since the status was read.
        if extra:
            st = m.try_status(stem)
            if st and st.get("state") in FINAL_STATES:
                break
        assert not extra, "a spare was started while a run was going:\n  %s" % pool.describe()
        looks += 1
        time.sleep(0.03)
    assert st["state"] == "succeeded" and m.read(stem + ".out") == "long done\n", st
    assert looks >= 5, "the run was over before it could be watched (%d looks)" % looks
    wait_gone(tree, "the spare that served the long run")
    wait_full(m, {lang: 1})


SLEEP_FOREVER = {"py": "import time\nprint('started', flush=True)\nwhile True:\n    time.sleep(1)\n",
                 "js": "console.log('started');\nsetInterval(() => {}, 1000);\n"}


@pytest.mark.deadline(90)
@pytest.mark.parametrize("lang", LANGS)
def test_time_limit_and_cancel_through_a_spare(mount, lang):
    """A run served by a spare is stopped at the time limit (timed_out), and
    one cancelled by a new save of its script is stopped and followed by the
    new run; each time the spare's whole sandbox goes, and afterwards the
    daemon has nothing but a full pool under it."""
    m = mount(opts=["warm=1", "timeout=2"])
    warm_up(m, lang)
    pool = wait_full(m, {lang: 1})
    tree = spare_tree(pool, oldest_idle(pool, lang))
    st = m.save_and_wait("forever." + lang, SLEEP_FOREVER[lang], 30 * SLOW)
    assert st["state"] == "timed_out", (st, m.read("forever.error"))
    assert 1900 <= st["duration_ms"] <= 6000 * SLOW, st
    assert m.read("forever.error").startswith("TimeoutError: "), m.read("forever.error")
    assert m.read("forever.out") == "started\n"
    wait_gone(tree, "the sandbox of the spare stopped at the time limit")

    pool = wait_full(m, {lang: 1})
    tree = spare_tree(pool, oldest_idle(pool, lang))
    name = "again." + lang
    m.write(name, SLEEP_FOREVER[lang])
    m.wait_for_status("again", lambda st: st.get("state") == "running" and st.get("stdout_bytes"),
                      20 * SLOW, "the first run to print")
    last = "print('last')\n" if lang == "py" else "console.log('last');\n"
    st = m.save_and_wait(name, last, 30 * SLOW)
    assert st["state"] == "succeeded" and m.read("again.out") == "last\n", st
    wait_gone(tree, "the sandbox of the spare whose run was cancelled")
    wait_full(m, {lang: 1})


# ----------------------------------------------------------------------------
# 2. A fresh interpreter and sandbox for every run
# ----------------------------------------------------------------------------

FRESH_PY = r"""import builtins, json, os, sys
me = os.path.basename(__file__)
with open("/proc/self/stat") as f:
    start = int(f.read().rsplit(")", 1)[1].split()[19])
seen = {
    "tmp_mark": open("/tmp/mark").read() if os.path.exists("/tmp/mark") else None,
    "environ": os.environ.get("AGENTBAYFS_POOL_MARK"),
    "module_attr": getattr(json, "agentbayfs_mark", None),
    "builtins_attr": getattr(builtins, "agentbayfs_mark", None),
    "sys_modules": "agentbayfs_planted" in sys.modules,
    "main_global": globals().get("AGENTBAYFS_MARK"),
    "work_others": sorted(n for n in os.listdir(".") if n != me),
}
tok = os.urandom(8).hex()
with open("/tmp/mark", "w") as f:
    f.write(tok)
os.environ["AGENTBAYFS_POOL_MARK"] = tok
json.agentbayfs_mark = tok
builtins.agentbayfs_mark = tok
sys.modules["agentbayfs_planted"] = json
AGENTBAYFS_MARK = tok
with open("left_behind.txt", "w") as f:
    f.write(tok)
print(json.dumps({"seen": seen, "ns": os.readlink("/proc/self/ns/pid"), "start": start,
                  "pid": os.getpid(), "token": tok}))
"""

FRESH_JS = r"""const fs = require('fs');
const path = require('path');
const me = path.basename(__filename);
const start = Number(fs.readFileSync('/proc/self/stat', 'utf8').split(')').pop().trim().split(' ')[19]);
const seen = {
  tmp_mark: fs.existsSync('/tmp/mark') ? fs.readFileSync('/tmp/mark', 'utf8') : null,
  environ: process.env.AGENTBAYFS_POOL_MARK === undefined ? null : process.env.AGENTBAYFS_POOL_MARK,
  module_attr: fs.agentbayfsMark === undefined ? null : fs.agentbayfsMark,
  builtins_attr: globalThis.agentbayfsMark === undefined ? null : globalThis.agentbayfsMark,
  sys_modules: Object.keys(require.cache).some((k) => k.includes('agentbayfs_planted')),
  main_global: null,
  work_others: fs.readdirSync('.').filter((n) => n !== me).sort(),
};
const tok = require('crypto').randomBytes(8).toString('hex');
fs.writeFileSync('/tmp/mark', tok);
process.env.AGENTBAYFS_POOL_MARK = tok;
fs.agentbayfsMark = tok;
globalThis.agentbayfsMark = tok;
require.cache['/agentbayfs_planted'] = require.cache[__filename];
fs.writeFileSync('left_behind.txt', tok);
const loaded = Object.keys(require.cache).filter((k) => k !== __filename && k !== '/agentbayfs_planted');
console.log(JSON.stringify({ seen, loaded, ns: fs.readlinkSync('/proc/self/ns/pid'), start, pid: process.pid,
  token: tok }));
"""

CLEAN = {"tmp_mark": None, "environ": None, "module_attr": None, "builtins_attr": None,
         "sys_modules": False, "main_global": None, "work_others": []}


@pytest.mark.deadline(120)
@pytest.mark.parametrize("lang", LANGS)
def test_every_run_gets_a_fresh_spare(mount, lang):
    """Every run has a fresh interpreter and sandbox: what run 1 left (a file
    in /tmp and in /work, an environment variable, module and builtin
    attributes, a main-module global) is not seen by run 2 of the same script
    nor by run 3 of another; each run is served by the spare that waited
    before its save (its own pid namespace, a later start time), and that
    spare's processes are all gone within a few seconds of the run's end:
    a spare is never reused. Nothing a spare set up ahead of its script
    (a module of its own) is left in /work or in require.cache."""
    m = mount(opts=["warm=1"])
    code = FRESH_PY if lang == "py" else FRESH_JS
    warm_up(m, lang)
    results = []
    for name in ("one." + lang, "one." + lang, "two." + lang):
        pool = wait_full(m, {lang: 1})
        spare = oldest_idle(pool, lang)
        tree = spare_tree(pool, spare)
        ns = pidns(spare)
        assert ns, spare
        _, out = run_ok(m, name, code)
        res = json.loads(out)
        results.append(res)
        assert res["ns"] == ns, "run of %s was not served by the spare waiting before its save " \
            "(spare %r in %s; the run was in %s)" % (name, spare, ns, res["ns"])
        assert res["start"] == spare.start, (res, spare)
        took = wait_gone(tree, "the sandbox of the spare that served %s" % name)
        assert took <= GONE_WAIT * SLOW
    for i, res in enumerate(results):
        # What the spare set up ahead (a module of its own) is gone.
        assert res["seen"]["work_others"] == [], res["seen"]
        assert res.get("loaded", []) == [], res["loaded"]
        if i == 0:
            continue
        assert res["seen"] == CLEAN, "run %d saw what run 1 left: %s" % (i + 1, res["seen"])
        assert res["start"] > results[i - 1]["start"], results
    assert len({r["token"] for r in results}) == 3


# ----------------------------------------------------------------------------
# 3. The same isolation as a cold run
# ----------------------------------------------------------------------------

ISOLATION_PY = r"""import errno, json, os, resource, socket
r = {}
r["ids"] = [os.getuid(), os.geteuid(), os.getgid(), os.getegid()]
r["groups"] = os.getgroups()
r["pid"] = os.getpid()
r["root"] = sorted(os.listdir("/"))
r["cwd"] = os.getcwd()
r["work"] = sorted(os.listdir("."))
r["tmp"] = sorted(os.listdir("/tmp"))
r["visible"] = {p: os.path.exists(p) for p in (@PATHS@)}
r["hostname"] = socket.gethostname()
r["interfaces"] = sorted(n for _, n in socket.if_nameindex())
s = socket.socket()
s.settimeout(3)
try:
    s.connect(("127.0.0.1", @PORT@))
    r["connect"] = "connected"
except OSError as e:
    r["connect"] = errno.errorcode.get(e.errno, str(e))
try:
    socket.getaddrinfo("example.com", 80)
    r["dns"] = "resolved"
except OSError as e:
    r["dns"] = "failed"
with open("/proc/self/status") as f:
    r["status"] = {k: v.strip() for k, v in (l.split(":", 1) for l in f)
                   if k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs", "Seccomp",
                            "Seccomp_filters")}
r["rlimits"] = {n: resource.getrlimit(getattr(resource, n)) for n in
                ("RLIMIT_CPU", "RLIMIT_AS", "RLIMIT_NOFILE", "RLIMIT_FSIZE", "RLIMIT_NPROC",
                 "RLIMIT_CORE")}
r["environ"] = sorted(os.environ.items())
r["umask"] = os.umask(0o22)
with open("/proc/self/mountinfo") as f:
    r["mounts"] = [(l.split()[4], l.split(" - ")[1].split()[0]) for l in f]
r["proc_pids"] = sorted(int(n) for n in os.listdir("/proc") if n.isdigit())
r["ns"] = os.readlink("/proc/self/ns/pid")
print(json.dumps(r, sort_keys=True))
"""


def isolation_of(m, listener, name):
    paths = ", ".join(repr(p) for p in (m.store, m.mnt, os.path.dirname(m.store),
                                         os.path.expanduser("~"), "/etc/passwd", "/root", "/home",
                                         "/var", "/run"))
    code = ISOLATION_PY.replace("@PATHS@", paths).replace("@PORT@", str(listener.getsockname()[1]))
    _, out = run_ok(m, name, code)
    return json.loads(out)


@pytest.mark.deadline(90)
def test_spare_isolation_same_as_cold(mount):
    """A script run by a spare (-o warm=1) sees exactly what one run cold
    (-o warm=0) sees: uids of the run range, no capabilities, the same
    seccomp filter, limits, environment, file system and processes, no
    network (a connect to a listener on the host's 127.0.0.1 fails), and
    neither the store nor the mountpoint."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.setblocking(False)
    try:
        warm = mount(opts=["warm=1"])
        warm_up(warm, "py")
        pool = wait_full(warm, {"py": 1})
        spare = oldest_idle(pool, "py")
        ns = pidns(spare)
        via_spare = isolation_of(warm, listener, "probe.py")
        assert via_spare["ns"] == ns, "the probe was not run by the spare waiting before its save"
        wait_gone(spare_tree(pool, spare), "the spare that served the probe")
        cold = mount(opts=["warm=0"])
        via_cold = isolation_of(cold, listener, "probe.py")
        try:
            conn = listener.accept()
        except BlockingIOError:
            conn = None
        assert conn is None, "a sandboxed script reached the host's 127.0.0.1"
    finally:
        listener.close()
    for r in (via_spare, via_cold):
        uid = r["ids"][0]
        assert len(set(r["ids"][:2])) == 1 and len(set(r["ids"][2:])) == 1, r["ids"]
        if IS_ROOT:
            assert LOCAL_UID_BASE <= uid < LOCAL_UID_BASE + UID_SPAN, r["ids"]
        else:
            assert uid == os.getuid(), r["ids"]
        assert r["connect"] != "connected" and r["dns"] == "failed", r
        assert r["interfaces"] == ["lo"], r["interfaces"]
        assert not any(r["visible"][p] for p in (warm.store, warm.mnt, cold.store, cold.mnt)
                       if p in r["visible"]), r["visible"]
        assert r["status"]["CapEff"] == "0000000000000000", r["status"]
    # The uid (and the groups) differ by slot: compare the rest exactly.
    skip = ("ids", "groups", "visible", "ns")
    a = {k: v for k, v in via_spare.items() if k not in skip}
    b = {k: v for k, v in via_cold.items() if k not in skip}
    diff = {k: (a.get(k), b.get(k)) for k in set(a) | set(b) if a.get(k) != b.get(k)}
    assert not diff, "a run through a spare differs from a cold run (spare, cold): %s" % diff
    assert sorted(via_spare["visible"].values()) == sorted(via_cold["visible"].values()), \
        (via_spare["visible"], via_cold["visible"])


# ----------------------------------------------------------------------------
# 4. A burst larger than the pool
# ----------------------------------------------------------------------------

BURST_PY = """import os, time
tok = os.urandom(8).hex()
print("before", os.listdir("/tmp"))
open("/tmp/burst", "w").write(tok)
time.sleep(0.2)
print("burst %d")
"""
BURST_JS = """const fs = require('fs');
console.log('before', JSON.stringify(fs.readdirSync('/tmp')));
fs.writeFileSync('/tmp/burst', 'x');
setTimeout(() => console.log('burst %d'), 200);
"""


@pytest.mark.deadline(150)
@pytest.mark.parametrize("mix", ["py", pytest.param("mixed", marks=needs_node)])
def test_burst_larger_than_pool(mount, mix):
    """Ten scripts saved at once under -o warm=1 all run once and succeed
    with the right output: the pool never makes a run wait or fail; the pool
    is full again (one spare per language) afterwards."""
    m = mount(opts=["warm=1"])
    langs = ["py"] if mix == "py" else ["py", "js"]
    for lang in langs:
        warm_up(m, lang)
    wait_full(m, {l: 1 for l in langs})
    names = []
    for i in range(10):
        lang = langs[i % len(langs)]
        names.append(("b%d.%s" % (i, lang), (BURST_PY if lang == "py" else BURST_JS) % i))
    t0 = time.monotonic()
    threads = [threading.Thread(target=m.write, args=nc) for nc in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    problems = []
    for i, (name, _) in enumerate(names):
        stem = name.rsplit(".", 1)[0]
        st = m.wait_run(stem, 1, 90 * SLOW)
        out = m.read(stem + ".out")
        # A fresh /tmp: nothing of another run of the burst in it.
        if st["state"] != "succeeded" or st["exit_code"] != 0 or out != "before []\nburst %d\n" % i:
            problems.append("%s: %s\n  out %r\n  error %r" % (name, st, out, m.read(stem + ".error")))
    elapsed = time.monotonic() - t0
    assert not problems, "runs of the burst went wrong:\n" + "\n".join(problems)
    for name, _ in names:
        m.assert_runs(name.rsplit(".", 1)[0], 1, settle=0)
    print("burst of 10 done in %.1f s" % elapsed)
    wait_full(m, {l: 1 for l in langs})
    hold_steady(m, {"py": 1, "js": 1 if "js" in langs else 0})


# ----------------------------------------------------------------------------
# 5. -o warm=0
# ----------------------------------------------------------------------------

@pytest.mark.deadline(90)
def test_warm_zero_never_starts_a_spare(mount):
    """With -o warm=0 no spare ever appears, before, between or after runs,
    and runs work."""
    m = mount(opts=["warm=0"])
    sampler = Sampler(m)
    try:
        for i in range(3):
            assert run_ok(m, "p.py", "print('py %d')\n" % i)[1] == "py %d\n" % i
            if HAVE_NODE:
                assert run_ok(m, "j.js", "console.log('js %d');\n" % i)[1] == "js %d\n" % i
        time.sleep(1.0)   # a negative: a wrong spare would be up by now
    finally:
        seen = sampler.close()
    assert not seen, "spares under -o warm=0:\n  %s" % "\n  ".join(map(repr, seen))
    pool = Pool(m)
    assert not pool.sandboxes, "sandboxes left after the runs:\n  %s" % pool.describe()


# ----------------------------------------------------------------------------
# 6. -o warm_idle
# ----------------------------------------------------------------------------

@pytest.mark.deadline(90)
def test_idle_spares_dropped_and_pool_refills(mount):
    """With -o warm_idle=1 the spare started after a run is gone a second or
    so after that run, no new one comes while the language stays unused, and
    the next run works (cold) and makes the pool fill again."""
    m = mount(opts=["warm=1", "warm_idle=1"])
    sampler = Sampler(m)
    try:
        for round_ in range(2):
            _, out = run_ok(m, "r.py", "print('round %d')\n" % round_)
            assert out == "round %d\n" % round_
            ended = time.monotonic()
            # The spare is started right after the run: it must show up (any
            # stage of its start counts, it may be dropped before it is idle).
            wait_pool(m, lambda pool: pool.warm_sandboxes_of("py") or sampler.seen,
                      "a python spare after round %d" % round_, timeout=10)
            # Dropped warm_idle after the run began (plus the time to kill it).
            wait_pool(m, lambda pool: not pool.warm, "the spares to be dropped", timeout=10)
            gone_after = time.monotonic() - ended
            assert gone_after <= 3.0 * SLOW + 1.0, "the spares went %.1f s after the run" % gone_after
            # Reaped too: nothing at all left under the daemon.
            wait_pool(m, lambda pool: not pool.mine, "every process of the dropped spares to be reaped",
                      timeout=5)
            # Nothing comes back while python is unused.
            since = boot_ticks()
            time.sleep(1.5)
            back = [p for p in list(sampler.seen.values()) if p.start >= since]
            assert not back, "spares came back with no run:\n  %s" % "\n  ".join(map(repr, back))
            sampler.seen.clear()
    finally:
        sampler.close()


# ----------------------------------------------------------------------------
# Spares that die
# ----------------------------------------------------------------------------

def kill_idle_spare(m, lang):
    """SIGKILLs the interpreter of the idle spare of LANG (as the OOM killer
    would); returns the processes of its sandbox."""
    pool = wait_full(m, {lang: 1})
    spare = oldest_idle(pool, lang)
    tree = spare_tree(pool, spare)
    os.kill(spare.pid, 9)
    return tree


@pytest.mark.deadline(90)
@pytest.mark.parametrize("lang", LANGS)
def test_spares_that_keep_dying_turn_the_pool_off(mount, lang):
    """Spares killed before use are replaced; a run in between resets the
    count; three in a row make the language fall back to cold starts with
    one warning in the log: no spare is started any more and runs work."""
    m = mount(opts=["warm=1"])
    word = "python" if lang == "py" else "node"
    m.allow_log(r"warm %s sandboxes keep ending before use" % word)
    warm_up(m, lang)
    for _ in range(2):
        wait_gone(kill_idle_spare(m, lang), "a killed spare")
    name, code, out = WARMUP[lang]
    wait_full(m, {lang: 1})                  # runs take only ready spares
    assert run_ok(m, name, code)[1] == out   # takes a spare: the count starts again
    for _ in range(2):
        wait_gone(kill_idle_spare(m, lang), "a killed spare")
    wait_full(m, {lang: 1})
    assert "keep ending before use" not in m.log_text(), m.log_tail()
    wait_gone(kill_idle_spare(m, lang), "a killed spare")
    deadline = time.monotonic() + 10 * SLOW
    while "keep ending before use" not in m.log_text():
        assert time.monotonic() < deadline, "no warning after 3 spares died in a row:\n" + m.log_tail()
        time.sleep(0.05)
    sampler = Sampler(m)
    try:
        for _ in range(2):
            assert run_ok(m, name, code)[1] == out
        time.sleep(1.0)   # a negative: a wrong spare would be up by now
    finally:
        seen = sampler.close()
    assert not seen, "spares started after the pool was turned off:\n  %s" % "\n  ".join(map(repr, seen))
    lines = [l for l in m.log_text().splitlines() if "keep ending before use" in l]
    assert len(lines) == 1 and "warm=0" in lines[0], lines


def proc_state(pid):
    st = proc_stat(pid)
    return st[0] if st else None


@pytest.mark.deadline(90)
@pytest.mark.parametrize("lang", LANGS)
def test_run_not_failed_by_a_spare_that_just_died(mount, lang):
    """A spare whose interpreter has died (as by the OOM killer) while the
    rest of its sandbox is not gone yet, so that the daemon cannot have
    noticed, does not make the run that comes then fail: the pool never
    makes a run fail that a cold start would have run."""
    # The window is made wide and sure: the sandbox's init is stopped
    # before the interpreter is killed, so the sandbox stays until the test
    # lets it go (at most a few seconds).
    m = mount(opts=["warm=1"])
    m.allow_log(r"warm (python|node) sandboxes keep ending before use")
    warm_up(m, lang)
    name = "k." + lang
    bad = []
    # Two: a third spare dying in a row would turn the pool off.
    for i in range(2):
        pool = wait_full(m, {lang: 1})
        spare = oldest_idle(pool, lang)
        init = [p for p in spare_tree(pool, spare) if p.nspid == 1 and p.pidns == spare.pidns]
        assert len(init) == 1, pool.describe()
        os.kill(init[0].pid, signal.SIGSTOP)
        try:
            os.kill(spare.pid, signal.SIGKILL)
            deadline = time.monotonic() + 5
            while proc_state(spare.pid) not in ("Z", None):
                assert time.monotonic() < deadline, "the spare's interpreter did not die"
                time.sleep(0.01)
            code = "print(%d)\n" % i if lang == "py" else "console.log(%d);\n" % i
            m.write(name, code)
            # A run that goes cold (or finds the spare dead) may end now.
            try:
                m.wait_run("k", i + 1, 1.0 * SLOW)
            except AssertionError:
                pass
        finally:
            os.kill(init[0].pid, signal.SIGCONT)
        st = m.wait_run("k", i + 1, 30 * SLOW)
        out = m.read("k.out")
        if st["state"] != "succeeded" or out != "%d\n" % i:
            bad.append("save %d: %s %s\n  .out %r\n  .error %r" % (
                i + 1, st["state"], st["error"], out, m.read("k.error")))
    assert not bad, "runs failed because the spare they took had just died:\n" + "\n".join(bad)


# ----------------------------------------------------------------------------
# 7. Unmount with spares
# ----------------------------------------------------------------------------

@pytest.mark.deadline(90)
def test_unmount_with_spares(mount):
    """fusermount3 -u while spares wait: the daemon exits 0 and no process
    of any spare is left."""
    m = mount(opts=["warm=2"])
    langs = ["py", "js"] if HAVE_NODE else ["py"]
    for lang in langs:
        warm_up(m, lang)
    pool = wait_full(m, {l: 2 for l in langs})
    procs = [p for p in pool.mine if p.state != "Z"]
    assert len(pool.idle) == 2 * len(langs), pool.describe()
    t0 = time.monotonic()
    m.unmount()   # fusermount3 -u; fails unless the daemon exits 0 within 15 s
    took = time.monotonic() - t0
    assert m.proc.returncode == 0
    wait_gone(procs, "processes of the spares after the daemon exited", timeout=GONE_WAIT)
    print("unmount with %d spares took %.2f s" % (len(pool.idle), took))


# ----------------------------------------------------------------------------
# 8. What a script does at exit, through a spare and cold
# ----------------------------------------------------------------------------

# name, code, .out, state, exit_code, first line of .error ("" for none), log to allow
EXIT_CASES = [
    ("atexit.py", "import atexit\natexit.register(lambda: print('atexit ran'))\nprint('main')\n",
     "main\natexit ran\n", "succeeded", 0, "", None),
    ("thread.py", "import threading, time\n"
                  "def late():\n    time.sleep(0.5)\n    print('thread done')\n"
                  "threading.Thread(target=late).start()\nprint('main done')\n",
     "main done\nthread done\n", "succeeded", 0, "", None),
    ("sysexit.py", "import atexit, sys\natexit.register(lambda: print('atexit ran'))\n"
                   "print('before')\nsys.exit(3)\n",
     "before\natexit ran\n", "failed", 3, "SystemExit: 3", "SystemExit"),
    ("raises.py", "import atexit\natexit.register(lambda: print('atexit ran'))\n"
                  "def f():\n    raise ValueError('boom')\nf()\n",
     "atexit ran\n", "failed", 1, "ValueError: boom", "ValueError"),
    ("partial.py", "import sys\nsys.stdout.write('no newline')\nsys.stderr.write('err no newline')\n",
     "no newline", "succeeded", 0, "", None),
    ("exit.js", "process.on('exit', (code) => console.log('exit listener', code));\nconsole.log('main');\n",
     "main\nexit listener 0\n", "succeeded", 0, "", None),
    ("exitcode.js", "process.on('exit', (code) => console.log('exit listener', code));\n"
                    "process.exitCode = 2;\nconsole.log('main');\n",
     "main\nexit listener 2\n", "failed", 2, "", None),
    ("timer.js", "setTimeout(() => console.log('timer ran'), 300);\n"
                 "setImmediate(() => console.log('immediate'));\nconsole.log('main');\n",
     "main\nimmediate\ntimer ran\n", "succeeded", 0, "", None),
    ("partial.js", "process.stdout.write('no newline');\nprocess.stderr.write('err no newline');\n",
     "no newline", "succeeded", 0, "", None),
    ("throws.js", "process.on('exit', () => console.log('exit listener'));\n"
                  "function f() {\n  throw new RangeError('boom');\n}\nf();\n",
     "exit listener\n", "failed", 1, "RangeError: boom", "RangeError"),
]


def _exit_params():
    out = []
    for case in EXIT_CASES:
        marks = [needs_node] if case[0].endswith(".js") else []
        for path in ("spare", "cold"):
            out.append(pytest.param(path, *case, id="%s-%s" % (case[0], path), marks=marks))
    return out


@pytest.mark.deadline(60)
@pytest.mark.parametrize("path,name,code,out,state,exit_code,error,log", _exit_params())
def test_exit_behaviour_kept(mount, path, name, code, out, state, exit_code, error, log):
    """What a script does at its end is kept although runs end as soon as the
    bootstrap reports the exit: Python atexit functions and a non-daemon
    thread finishing late still print, sys.exit(3) gives exit_code 3, an
    uncaught exception gives its .error, output without newline or flush
    arrives; in JS the script's exit listeners run, process.exitCode is the
    exit code, and timers run. Through a spare (-o warm=1, the spare that
    waited is gone afterwards) and cold (-o warm=0) alike."""
    m = mount(opts=["warm=1" if path == "spare" else "warm=0"])
    if log:
        m.allow_log(log)
    lang = name.rsplit(".", 1)[1]
    tree = []
    if path == "spare":
        warm_up(m, lang)
        pool = wait_full(m, {lang: 1})
        tree = spare_tree(pool, oldest_idle(pool, lang))
    stem = name.rsplit(".", 1)[0]
    st = m.save_and_wait(name, code, 30 * SLOW)
    got = m.read(stem + ".out")
    err = m.read(stem + ".err")
    text = m.read(stem + ".error")
    desc = "%s (%s): status %s\nout %r\nerr %r\nerror %r" % (name, path, st, got, err, text)
    assert got == out, desc
    assert st["state"] == state and st["exit_code"] == exit_code, desc
    if error:
        assert text.split("\n", 1)[0] == error, desc
        if name.endswith(".py"):
            assert st["error"]["name"] == error.split(":")[0], desc
    elif state == "succeeded":
        assert text == "" and st["error"] is None, desc
    if "partial" in name:
        assert err == "err no newline", desc
    if name == "raises.py":
        assert 'File "raises.py", line 4, in f' in text and "_agentbayfs" not in text, desc
    if name == "throws.js":
        assert "throws.js:3" in text, desc
    if tree:
        # The spare served this run (a spare left idle would still be there).
        wait_gone(tree, "the spare that was waiting before the save")


# ----------------------------------------------------------------------------
# 9. Bad option values
# ----------------------------------------------------------------------------

@pytest.mark.parametrize("opt,words", [
    ("warm=65", ("warm", "65", "64")),
    ("warm=-1", ("warm", "-1")),
    ("warm=abc", ("warm", "abc")),
    ("warm=", ("warm",)),
    ("warm_idle=0", ("warm_idle", "0")),
    ("warm_idle=-5", ("warm_idle",)),
    ("warm_idle=8d", ("warm_idle",)),
])
def test_bad_pool_option_refused(bin_path, tmp_path, opt, words):
    """-o warm outside 0..64 or not a number, and -o warm_idle that is not a
    positive number of seconds, are refused: non-zero exit, a message naming
    the option and the bad value, nothing mounted."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    try:
        rc, out, err = run_binary(["-f", "-o", "store=%s,%s" % (tmp_path / "store", opt), str(mnt)],
                                  timeout=10)
        mounted = is_mounted(str(mnt))
    finally:
        lazy_unmount(str(mnt))
    text = out + err
    assert rc not in (0, None), (opt, rc, text)
    assert not mounted, "%s: the mountpoint was mounted" % opt
    line = next((l for l in text.splitlines() if words[0] in l), "")
    assert all(w in line for w in words), "%s: the message does not name %s: %r" % (opt, words, text)


@pytest.mark.parametrize("opt", ["warm=0", "warm=64", "warm_idle=1", "warm_idle=5m"])
def test_pool_option_bounds_accepted(mount, opt):
    """The bounds -o warm=0 and 64, -o warm_idle=1 and 5m are accepted and
    runs work (with warm=64 no run is made: it would start 64 sandboxes)."""
    m = mount(opts=[opt])
    if opt == "warm=64":
        assert m.listdir() == []
        return
    assert run_ok(m, "ok.py", "print('ok')\n")[1] == "ok\n"

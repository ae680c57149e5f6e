# Read outside the sandbox: the store, the mountpoint, root's home, /etc/shadow,
# the daemon's environment and memory, other processes. None of it is there.
import errno
import os

STORE = "@STORE@"
MOUNTPOINT = "@MOUNTPOINT@"
STORE_SECRET = "@STORE_SECRET@"
HOME_SECRET = "@HOME_SECRET@"
DAEMON_PID = int("@DAEMON_PID@")


def refused(label, e):
    print("BLOCKED: %s: %s" % (label, errno.errorcode.get(e.errno, e)), flush=True)


def try_read(path, offset=0):
    try:
        with open(path, "rb", buffering=0) as f:
            if offset:
                f.seek(offset)
            data = f.read(200)
    except OSError as e:
        refused("read %s" % path, e)
        return
    print("ESCAPED: read %s: %r" % (path, data), flush=True)


def try_list(path):
    try:
        names = os.listdir(path)
    except OSError as e:
        refused("list %s" % path, e)
        return
    print("ESCAPED: list %s: %s" % (path, names[:20]), flush=True)


for p in (STORE_SECRET, HOME_SECRET, "/etc/shadow", "/etc/gshadow",
          "/proc/%d/environ" % DAEMON_PID, "/proc/%d/cmdline" % DAEMON_PID,
          "/proc/%d/root%s" % (DAEMON_PID, HOME_SECRET)):
    try_read(p)
# The daemon's memory: a read anywhere in its address space.
try_read("/proc/%d/mem" % DAEMON_PID, offset=0x400000)
for p in (STORE, os.path.dirname(STORE), MOUNTPOINT, "/root", "/home", "/proc/%d" % DAEMON_PID):
    try_list(p)

# Only the sandbox's own processes are visible.
host = []
for pid in os.listdir("/proc"):
    if not pid.isdigit():
        continue
    try:
        with open("/proc/%s/cmdline" % pid, "rb") as f:
            cmd = f.read().replace(b"\0", b" ")
    except OSError:
        continue
    if b"pytest" in cmd or b"store=" in cmd or int(pid) == DAEMON_PID:
        host.append((pid, cmd[:80]))
if host:
    print("ESCAPED: host processes visible: %s" % host, flush=True)
else:
    print("BLOCKED: process list: only the sandbox's own processes", flush=True)

if any("SECRET" in k for k in os.environ):
    print("ESCAPED: environment: %s" % sorted(os.environ), flush=True)
else:
    print("INFO: environment keys %s" % sorted(os.environ), flush=True)
print("DONE read_outside")

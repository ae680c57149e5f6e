# Reach host files through /proc: /proc/self/root, /proc/1/root,
# /proc/self/cwd, inherited descriptors, and open_by_handle_at ("shocker").
import ctypes
import errno
import os

STORE = "@STORE@"
MOUNTPOINT = "@MOUNTPOINT@"
STORE_SECRET = "@STORE_SECRET@"
HOME_SECRET = "@HOME_SECRET@"


def try_read(path):
    try:
        with open(path, "rb") as f:
            data = f.read(200)
    except OSError as e:
        print("BLOCKED: read %s: %s" % (path, errno.errorcode.get(e.errno, e)), flush=True)
        return
    print("ESCAPED: read %s: %r" % (path, data), flush=True)


for prefix in ("/proc/self/root", "/proc/1/root", "/proc/thread-self/root", "/proc/self/cwd/../..",
               "/proc/1/cwd/../..", "/proc/self/root/proc/1/root", "/work/../../.."):
    for target in (HOME_SECRET, STORE_SECRET, "/etc/shadow"):
        try_read(prefix + target)

# The roots seen through /proc are the sandbox's own.
for p in ("/proc/self/root", "/proc/1/root", "/proc/self/root/..", "/proc/1/cwd/.."):
    try:
        seen = sorted(os.listdir(p))
    except OSError as e:
        print("BLOCKED: list %s: %s" % (p, errno.errorcode.get(e.errno, e)), flush=True)
        continue
    if seen == sorted(os.listdir("/")):
        print("BLOCKED: %s: the sandbox's own root" % p, flush=True)
    else:
        print("ESCAPED: %s: another root %s" % (p, seen), flush=True)

# Descriptors inherited from the daemon.
fine = ("pipe:", "anon_inode:", "socket:", "/dev/null", "/work/", "/tmp/", "/proc/")
for fd in sorted(os.listdir("/proc/self/fd"), key=int):
    try:
        target = os.readlink("/proc/self/fd/" + fd)
    except OSError:
        continue
    if target.startswith(fine) and not target.startswith((STORE, MOUNTPOINT)):
        print("INFO: fd %s -> %s" % (fd, target), flush=True)
    else:
        print("ESCAPED: fd %s -> %s: inherited from outside" % (fd, target), flush=True)

# open_by_handle_at needs CAP_DAC_READ_SEARCH: with it, a handle of inode 2
# (the root of the file system holding /usr) would open the host's /.
libc = ctypes.CDLL(None, use_errno=True)


class Handle(ctypes.Structure):
    _fields_ = [("handle_bytes", ctypes.c_uint), ("handle_type", ctypes.c_int),
                ("f_handle", ctypes.c_ubyte * 8)]


h = Handle(8, 1)
ctypes.memmove(h.f_handle, (ctypes.c_uint * 2)(2, 0), 8)
usr = os.open("/usr", os.O_RDONLY | os.O_DIRECTORY)
fd = libc.open_by_handle_at(usr, ctypes.byref(h), os.O_RDONLY | os.O_DIRECTORY)
if fd < 0:
    print("BLOCKED: open_by_handle_at: %s" % errno.errorcode.get(ctypes.get_errno()), flush=True)
else:
    print("ESCAPED: open_by_handle_at: opened the host's root: %s" % sorted(os.listdir(fd))[:20], flush=True)
print("DONE proc_escape")

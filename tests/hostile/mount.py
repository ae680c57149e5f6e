# Mounting from inside the sandbox: a tmpfs, a bind of /usr, proc, a
# read-write remount of /, an unmount. All are refused (no capabilities).
import ctypes
import errno
import os
import subprocess

libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
MS_RDONLY, MS_REMOUNT, MS_BIND = 1, 32, 4096
os.makedirs("/tmp/m", exist_ok=True)


def mountinfo():
    with open("/proc/self/mountinfo") as f:
        return f.read()


before = mountinfo()
for label, args in (("tmpfs on /tmp/m", (b"none", b"/tmp/m", b"tmpfs", 0, None)),
                    ("bind /usr on /tmp/m", (b"/usr", b"/tmp/m", None, MS_BIND, None)),
                    ("proc on /tmp/m", (b"proc", b"/tmp/m", b"proc", 0, None)),
                    ("remount / read-write", (None, b"/", None, MS_REMOUNT | MS_BIND, None)),
                    ("remount /usr read-write", (None, b"/usr", None, MS_REMOUNT | MS_BIND, None))):
    if libc.mount(*args) == 0:
        print("ESCAPED: mount %s: mounted" % label, flush=True)
    else:
        print("BLOCKED: mount %s: %s" % (label, errno.errorcode.get(ctypes.get_errno())), flush=True)
if libc.umount2(b"/usr", 2) == 0:
    print("ESCAPED: umount /usr: unmounted", flush=True)
else:
    print("BLOCKED: umount /usr: %s" % errno.errorcode.get(ctypes.get_errno()), flush=True)
for argv in (["mount", "-t", "tmpfs", "none", "/tmp/m"], ["umount", "/work"]):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    label = " ".join(argv)
    if r.returncode == 0:
        print("ESCAPED: %s: succeeded" % label, flush=True)
    else:
        print("BLOCKED: %s: exit status %d" % (label, r.returncode), flush=True)
if mountinfo() != before:
    print("ESCAPED: mount table changed", flush=True)
print("DONE mount")

# Write outside the private /tmp and /work: the system, the store, the
# mountpoint, root's home, a kernel setting. Everything is read-only or absent;
# the test also looks on the host for the files this tries to create.
import errno
import os

STORE = "@STORE@"
MOUNTPOINT = "@MOUNTPOINT@"
NAME = "agentbayfs-escape-@TOKEN@"


def attempt(label, func):
    try:
        func()
    except OSError as e:
        print("BLOCKED: %s: %s" % (label, errno.errorcode.get(e.errno, e)), flush=True)
        return
    print("ESCAPED: %s: it worked" % label, flush=True)


def create(path):
    with open(path, "x") as f:
        f.write("written from a sandbox\n")


for d in ("/", "/usr", "/usr/lib", "/usr/bin", "/etc", "/root", STORE, MOUNTPOINT, "/proc", "/work/.."):
    attempt("create %s" % os.path.join(d, NAME), lambda d=d: create(os.path.join(d, NAME)))
    attempt("mkdir %s" % os.path.join(d, NAME + ".d"), lambda d=d: os.mkdir(os.path.join(d, NAME + ".d")))
for f in ("/usr/bin/python3", "/etc/ld.so.cache", "/etc/localtime"):
    attempt("append to %s" % f, lambda f=f: open(f, "ab").close())
attempt("chmod /usr/bin/env", lambda: os.chmod("/usr/bin/env", 0o4755))
attempt("rename /usr/bin/env", lambda: os.rename("/usr/bin/env", "/usr/bin/env." + NAME))
attempt("unlink /etc/ld.so.cache", lambda: os.unlink("/etc/ld.so.cache"))


def same_core_pattern():
    # Writes the value it already has: no effect even if it were allowed.
    with open("/proc/sys/kernel/core_pattern") as f:
        old = f.read()
    with open("/proc/sys/kernel/core_pattern", "w") as f:
        f.write(old)


attempt("write /proc/sys/kernel/core_pattern", same_core_pattern)
print("DONE write_outside")

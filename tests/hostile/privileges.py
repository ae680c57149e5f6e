# Looks for privileges: capabilities, root, setuid binaries, chroot,
# setgroups, sethostname. The sandbox has none of them.
import errno
import os
import socket

with open("/proc/self/status") as f:
    status = dict(line.split(":", 1) for line in f.read().splitlines() if ":" in line)
for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
    value = status[cap].strip()
    if int(value, 16):
        print("ESCAPED: %s: %s" % (cap, value), flush=True)
    else:
        print("BLOCKED: %s: no capabilities" % cap, flush=True)
print("INFO: uid %d gid %d NoNewPrivs %s" % (os.getuid(), os.getgid(), status["NoNewPrivs"].strip()), flush=True)
if os.statvfs("/usr").f_flag & os.ST_NOSUID:
    print("BLOCKED: setuid binaries: /usr is nosuid", flush=True)
else:
    print("ESCAPED: setuid binaries: /usr allows setuid", flush=True)


def attempt(label, func):
    try:
        func()
    except OSError as e:
        print("BLOCKED: %s: %s" % (label, errno.errorcode.get(e.errno, e)), flush=True)
        return
    print("ESCAPED: %s: it worked" % label, flush=True)


attempt("setuid(0)", lambda: os.setuid(0))
attempt("setgid(0)", lambda: os.setgid(0))
attempt("setgroups([0])", lambda: os.setgroups([0]))
attempt("chroot", lambda: os.chroot("/tmp"))
attempt("sethostname", lambda: socket.sethostname("escaped"))
attempt("mknod /tmp/sda", lambda: os.mknod("/tmp/sda", 0o600 | 0o060000, os.makedev(8, 0)))
print("DONE privileges")

# New namespaces from inside the sandbox: a user namespace (which would give
# back capabilities) and the others. All are refused (--disable-userns, no
# capabilities). Each attempt is made in a child, so a success changes nothing.
import ctypes
import errno
import os
import subprocess

libc = ctypes.CDLL(None, use_errno=True)
FLAGS = {"user": 0x10000000, "user+mount": 0x10000000 | 0x00020000, "mount": 0x00020000,
         "net": 0x40000000, "pid": 0x20000000, "uts": 0x04000000, "ipc": 0x08000000,
         "cgroup": 0x02000000}
for name, flag in FLAGS.items():
    pid = os.fork()
    if pid == 0:
        rc = libc.unshare(flag)
        os._exit(0 if rc == 0 else min(ctypes.get_errno(), 255) or 255)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code == 0:
        print("ESCAPED: unshare(%s): created" % name, flush=True)
    else:
        print("BLOCKED: unshare(%s): %s" % (name, errno.errorcode.get(code, code)), flush=True)

for argv in (["unshare", "-U", "true"], ["unshare", "-r", "id", "-u"], ["unshare", "-Urm", "true"],
             ["unshare", "-n", "true"]):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    label = " ".join(argv)
    if r.returncode == 0:
        print("ESCAPED: %s: succeeded %r" % (label, r.stdout.strip()), flush=True)
    else:
        print("BLOCKED: %s: %s" % (label, r.stderr.strip().splitlines()[-1:]), flush=True)
print("DONE userns")

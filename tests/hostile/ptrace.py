# Takes control of the sandbox's init (pid 1, bubblewrap): PTRACE_ATTACH,
# /proc/1/mem and process_vm_readv. A traced init could be made to do anything
# the sandbox may not (see ptrace_init_outlive.py). All should be refused.
import ctypes
import errno
import os

libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.restype = ctypes.c_long
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
PTRACE_ATTACH, PTRACE_DETACH = 16, 17


def err():
    return errno.errorcode.get(ctypes.get_errno(), ctypes.get_errno())


if libc.ptrace(PTRACE_ATTACH, 1, None, None) == 0:
    os.waitpid(1, 0x40000000)  # __WALL: the attach stop
    libc.ptrace(PTRACE_DETACH, 1, None, None)
    print("ESCAPED: ptrace pid 1: attached to the sandbox's init", flush=True)
else:
    print("BLOCKED: ptrace pid 1: %s" % err(), flush=True)

# A readable mapping of pid 1, then its memory.
try:
    with open("/proc/1/maps") as f:
        start = int(f.readline().split("-")[0], 16)
except OSError as e:
    start = 0x400000
    print("BLOCKED: read /proc/1/maps: %s" % errno.errorcode.get(e.errno, e), flush=True)
try:
    with open("/proc/1/mem", "rb", buffering=0) as f:
        f.seek(start)
        data = f.read(16)
    print("ESCAPED: read /proc/1/mem: %r" % data, flush=True)
except OSError as e:
    print("BLOCKED: read /proc/1/mem: %s" % errno.errorcode.get(e.errno, e), flush=True)


class IOVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


buf = ctypes.create_string_buffer(16)
local, remote = IOVec(ctypes.addressof(buf), 16), IOVec(start, 16)
libc.process_vm_readv.restype = ctypes.c_ssize_t
if libc.process_vm_readv(1, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0) > 0:
    print("ESCAPED: process_vm_readv pid 1: %r" % buf.raw, flush=True)
else:
    print("BLOCKED: process_vm_readv pid 1: %s" % err(), flush=True)
print("DONE ptrace")

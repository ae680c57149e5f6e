# Uses ptrace on the sandbox's init (bubblewrap, pid 1) to make it call
# prctl(PR_SET_PDEATHSIG, 0): when the daemon then kills the sandbox at the
# time limit, init no longer dies with its parent and the sandbox would live
# on. x86_64 only. The run must still end at the time limit with nothing left.
import ctypes
import os
import platform
import time

libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.restype = ctypes.c_long
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
PTRACE_GETREGS, PTRACE_SETREGS, PTRACE_SINGLESTEP, PTRACE_ATTACH, PTRACE_DETACH = 12, 13, 9, 16, 17
WALL = 0x40000000
SYS_PRCTL, PR_SET_PDEATHSIG = 157, 1


class Regs(ctypes.Structure):
    _fields_ = [(n, ctypes.c_ulonglong) for n in (
        "r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi orig_rax "
        "rip cs eflags rsp ss fs_base gs_base ds es fs gs").split()]


def pt(req, addr=None, data=None):
    if libc.ptrace(req, 1, addr, data) == -1:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def syscall_instruction():
    """The address of a `syscall` instruction in pid 1's code."""
    with open("/proc/1/maps") as maps, open("/proc/1/mem", "rb", buffering=0) as mem:
        for line in maps:
            fields = line.split()
            if "x" not in fields[1]:
                continue
            lo, hi = (int(x, 16) for x in fields[0].split("-"))
            mem.seek(lo)
            i = mem.read(hi - lo).find(b"\x0f\x05")
            if i >= 0:
                return lo + i
    raise OSError("no syscall instruction found")


def clear_init_pdeathsig():
    pt(PTRACE_ATTACH)
    os.waitpid(1, WALL)
    saved = Regs()
    pt(PTRACE_GETREGS, None, ctypes.byref(saved))
    regs = Regs.from_buffer_copy(saved)
    regs.rip = syscall_instruction()
    regs.rax, regs.rdi, regs.rsi, regs.orig_rax = SYS_PRCTL, PR_SET_PDEATHSIG, 0, 2**64 - 1
    pt(PTRACE_SETREGS, None, ctypes.byref(regs))
    pt(PTRACE_SINGLESTEP)
    os.waitpid(1, WALL)
    pt(PTRACE_GETREGS, None, ctypes.byref(regs))
    pt(PTRACE_SETREGS, None, ctypes.byref(saved))
    pt(PTRACE_DETACH)
    return regs.rax


if platform.machine() != "x86_64":
    print("INFO: not x86_64, nothing tried", flush=True)
else:
    try:
        rc = clear_init_pdeathsig()
        print("INFO: pid 1 ran prctl(PR_SET_PDEATHSIG, 0) = %d" % ctypes.c_long(rc).value, flush=True)
    except OSError as e:
        print("BLOCKED: ptrace pid 1: %s" % e, flush=True)
print("INFO: now waiting for the time limit", flush=True)
while True:
    time.sleep(3600)

# Kills its parent (the sandbox's init), then every process it may signal
# (kill(-1, SIGKILL)). Only the sandbox's processes are reachable: the daemon
# and the host's processes of the same uid live on.
import os
import signal
import time

ppid = os.getppid()
print("INFO: parent is pid %d" % ppid, flush=True)
for label, pid in (("parent", ppid), ("pid 1", 1)):
    try:
        os.kill(pid, signal.SIGKILL)
        print("INFO: kill(%s, SIGKILL) returned" % label, flush=True)
    except OSError as e:
        print("BLOCKED: kill %s: %s" % (label, e.strerror), flush=True)
time.sleep(0.3)
print("INFO: still running, parent now %d" % os.getppid(), flush=True)
try:
    os.kill(-1, signal.SIGKILL)
    print("INFO: kill(-1, SIGKILL) returned", flush=True)
except OSError as e:
    print("INFO: kill(-1, SIGKILL): %s" % e.strerror, flush=True)
time.sleep(0.3)
print("BLOCKED: kill: the script is still running", flush=True)
print("DONE kill_parent")

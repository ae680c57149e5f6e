# Background children that try to outlive the run: double fork + setsid, one
# keeping the output pipe (it would print after the run ended), one fully
# detached. Both must be gone when the run ends.
import os
import time


def detach(keep_output):
    if os.fork() != 0:
        return
    os.setsid()
    if os.fork() != 0:
        os._exit(0)
    if not keep_output:
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
    time.sleep(1.5)
    print("ESCAPED: background: a detached grandchild still runs after the script ended", flush=True)
    time.sleep(30)
    os._exit(0)


detach(True)
detach(False)
time.sleep(0.2)
print("DONE background", flush=True)

# First half of a pair: leave files in the private /tmp, /work and /dev/shm
# (and a detached process that keeps writing there) for a later run to find.
import os
import time

TOKEN = "@TOKEN@"
for d in ("/tmp", "/work", "/dev/shm", "/dev"):
    p = os.path.join(d, "agentbayfs-plant-" + TOKEN)
    try:
        with open(p, "w") as f:
            f.write("left by an earlier run\n")
        print("INFO: planted %s" % p, flush=True)
    except OSError as e:
        print("INFO: cannot plant %s: %s" % (p, e), flush=True)
os.makedirs("/tmp/agentbayfs-plant-dir-" + TOKEN + "/sub", exist_ok=True)

if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        # Would keep re-creating the file if it outlived the run.
        for _ in range(300):
            try:
                with open("/tmp/agentbayfs-plant-late-" + TOKEN, "w") as f:
                    f.write("written after the run ended\n")
            except OSError:
                pass
            time.sleep(0.1)
    os._exit(0)
time.sleep(0.3)
print("DONE plant")

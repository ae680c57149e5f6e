# Second half of a pair: look for what an earlier run (plant) left behind.
import os

TOKEN = "@TOKEN@"
paths = ["/tmp/agentbayfs-plant-" + TOKEN, "/work/agentbayfs-plant-" + TOKEN,
         "/dev/shm/agentbayfs-plant-" + TOKEN, "/dev/agentbayfs-plant-" + TOKEN,
         "/tmp/agentbayfs-plant-dir-" + TOKEN, "/tmp/agentbayfs-plant-late-" + TOKEN]
for p in paths:
    if os.path.lexists(p):
        print("ESCAPED: %s: left by an earlier run is visible" % p, flush=True)
    else:
        print("BLOCKED: %s: not there" % p, flush=True)
me = os.path.basename(__file__)
extra = sorted(set(os.listdir("/work")) - {me}) + sorted(os.listdir("/tmp"))
if extra:
    print("ESCAPED: /work and /tmp are not fresh: %s" % extra, flush=True)
else:
    print("BLOCKED: fresh /tmp and /work", flush=True)
print("DONE peek")

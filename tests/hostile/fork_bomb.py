# Fork bomb: every process forks forever. The process limit (-o max_procs)
# refuses forks; the time limit then stops the run and the whole tree goes.
import os
import time

LIMIT = int("@MAX_PROCS@")
original = os.getpid()
start = time.monotonic()
forks = 0
refused = False
counted = False
while True:
    try:
        if os.fork() == 0:
            forks = 0
            continue
        forks += 1
    except OSError as e:
        if os.getpid() == original and not refused:
            refused = True
            print("BLOCKED: fork: refused (%s) after %d forks" % (e.strerror, forks), flush=True)
        time.sleep(0.01)
    if os.getpid() == original and not counted and time.monotonic() - start > 1.0:
        counted = True
        n = sum(1 for p in os.listdir("/proc") if p.isdigit())
        print("INFO: %d processes in the sandbox" % n, flush=True)
        if n > LIMIT + 3:
            print("ESCAPED: fork: %d processes, over the limit of %d" % (n, LIMIT), flush=True)

# Ignores every catchable termination signal, then sleeps. The run is still
# stopped at the time limit.
import signal
import time

for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
          signal.SIGUSR2, signal.SIGPIPE, signal.SIGALRM, signal.SIGXCPU):
    signal.signal(s, signal.SIG_IGN)
print("INFO: ignoring SIGTERM", flush=True)
while True:
    time.sleep(3600)

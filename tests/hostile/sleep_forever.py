# Sleeps forever. The time limit (-o timeout) stops the run.
import time

print("INFO: sleeping", flush=True)
while True:
    time.sleep(3600)

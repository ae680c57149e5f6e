# Spins on the CPU forever. The time limit (-o timeout) stops the run.
print("INFO: spinning", flush=True)
n = 0
while True:
    n += 1

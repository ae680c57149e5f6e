# Unbounded memory: allocate (and touch) 16 MiB at a time until refused. The
# address space limit (-o memory) ends it with MemoryError.
LIMIT_MB = int("@MEMORY_MB@")
chunks = []
mb = 0
while True:
    chunks.append(b"\1" * (16 << 20))
    mb += 16
    if mb % 64 == 0:
        print("INFO: %d MiB allocated" % mb, flush=True)
    if mb > LIMIT_MB:
        print("ESCAPED: memory: %d MiB allocated, over the limit of %d MiB" % (mb, LIMIT_MB), flush=True)

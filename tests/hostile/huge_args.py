# Huge argument lists and environments for a subprocess. The kernel refuses
# them (E2BIG); the run and the daemon carry on.
import subprocess

big = "x" * (4 << 20)
cases = [
    ("one 4 MiB argument", ["/bin/true", big], None),
    ("40000 arguments of 1 KiB", ["/bin/true"] + ["a" * 1024] * 40000, None),
    ("a 4 MiB environment variable", ["/bin/true"], {"BIG": big}),
    ("20000 environment variables", ["/bin/true"], {"V%d" % i: "b" * 1024 for i in range(20000)}),
]
for label, argv, env in cases:
    try:
        r = subprocess.run(argv, env=env)
        print("INFO: %s: ran, exit status %d" % (label, r.returncode), flush=True)
    except OSError as e:
        print("BLOCKED: %s: %s" % (label, e.strerror), flush=True)
print("DONE huge_args")

# Network: reach a TCP listener and an abstract unix socket of the host, and
# resolve names. The sandbox has its own loopback only: every attempt fails.
import errno
import socket

PORT = int("@PORT@")
ABSTRACT = "@ABSTRACT@"


def report(label, exc):
    name = errno.errorcode.get(getattr(exc, "errno", None) or 0, type(exc).__name__)
    print("BLOCKED: %s: %s %s" % (label, name, exc), flush=True)


for host in ("127.0.0.1", "::1"):
    label = "tcp %s port %d" % (host, PORT)
    try:
        s = socket.create_connection((host, PORT), timeout=3)
        s.sendall(b"ESCAPED\n")
        s.close()
        print("ESCAPED: %s: connected to the host's listener" % label, flush=True)
    except OSError as e:
        report(label, e)

try:
    u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    u.settimeout(3)
    u.connect("\0" + ABSTRACT)
    u.sendall(b"ESCAPED\n")
    print("ESCAPED: abstract unix socket: connected to the host's listener", flush=True)
except OSError as e:
    report("abstract unix socket", e)

for host in ("localhost", "example.com", "dns.google"):
    label = "resolve %s" % host
    try:
        addrs = socket.getaddrinfo(host, 80, proto=socket.IPPROTO_TCP)
    except OSError as e:
        report(label, e)
        continue
    ips = sorted({a[4][0] for a in addrs})
    if all(ip in ("127.0.0.1", "::1") for ip in ips):
        print("INFO: %s: loopback only %s" % (label, ips), flush=True)
    else:
        print("ESCAPED: %s: %s" % (label, ips), flush=True)

names = sorted(n for _, n in socket.if_nameindex())
if names == ["lo"]:
    print("BLOCKED: interfaces: only lo", flush=True)
else:
    print("ESCAPED: interfaces: %s" % names, flush=True)
print("DONE network")

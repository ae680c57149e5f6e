# Exhausts the run's other resources: the largest file (-o max_file_size), its
# private /tmp and /work (-o tmp_size) and open files (-o max_open_files).
# Each is refused with an error; the run carries on.
import errno
import os

CHUNK = b"\0" * (1 << 20)
GIVE_UP = 1 << 30


def code(e):
    return errno.errorcode.get(e.errno, str(e))


def fill(label, directory):
    """Writes files of up to the size limit until the directory is full."""
    total, files, too_big = 0, [], None
    while total < GIVE_UP:
        path = os.path.join(directory, "fill%d" % len(files))
        files.append(path)
        try:
            with open(path, "wb") as f:
                while total < GIVE_UP:
                    f.write(CHUNK)
                    f.flush()
                    total += len(CHUNK)
        except OSError as e:
            if e.errno != errno.EFBIG:
                print("BLOCKED: %s: %s after %d MiB" % (label, code(e), total >> 20), flush=True)
                break
            if too_big is None:
                too_big = os.path.getsize(path)
                print("BLOCKED: file size: EFBIG at %d MiB" % (too_big >> 20), flush=True)
    else:
        print("ESCAPED: %s: wrote %d MiB" % (label, total >> 20), flush=True)
    for path in files:
        try:
            os.unlink(path)
        except OSError:
            pass


fill("fill /tmp", "/tmp")
fill("fill /work", "/work")
fds = []
try:
    while len(fds) < 100000:
        fds.append(os.open("/dev/null", os.O_RDONLY))
    print("ESCAPED: open files: %d" % len(fds), flush=True)
except OSError as e:
    print("BLOCKED: open files: %s after %d" % (code(e), len(fds)), flush=True)
for fd in fds:
    os.close(fd)
print("DONE resources")

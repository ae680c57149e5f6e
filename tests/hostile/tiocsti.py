# Pushes characters into a terminal's input queue (TIOCSTI) to run commands in
# the user's shell. The run has no terminal: stdin is /dev/null and it is in a
# new session without a controlling terminal.
import errno
import fcntl
import os
import termios

for fd in (0, 1, 2):
    try:
        fcntl.ioctl(fd, termios.TIOCSTI, b"#")
        print("ESCAPED: TIOCSTI on fd %d: injected" % fd, flush=True)
    except OSError as e:
        print("BLOCKED: TIOCSTI on fd %d: %s" % (fd, errno.errorcode.get(e.errno, e)), flush=True)
    if os.isatty(fd):
        print("ESCAPED: fd %d is a terminal: %s" % (fd, os.ttyname(fd)), flush=True)
for path in ("/dev/tty", "/dev/console", "/dev/tty0", "/dev/tty1"):
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    except OSError as e:
        print("BLOCKED: open %s: %s" % (path, errno.errorcode.get(e.errno, e)), flush=True)
        continue
    try:
        fcntl.ioctl(fd, termios.TIOCSTI, b"#")
        print("ESCAPED: TIOCSTI on %s: injected" % path, flush=True)
    except OSError as e:
        print("BLOCKED: TIOCSTI on %s: %s" % (path, errno.errorcode.get(e.errno, e)), flush=True)
    finally:
        os.close(fd)
print("INFO: session %d, process group %d" % (os.getsid(0), os.getpgrp()), flush=True)
print("DONE tiocsti")

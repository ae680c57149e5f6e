"""The configuration file ($XDG_CONFIG_HOME/agentbayfs/config, else
/etc/agentbayfs.conf): its settings apply, -o overrides them, a bad line
stops the mount with a message naming the file and the line, and --help
works whatever the file says. (The environment over the file, for the
AgentBay settings, is in test_agentbay.py.)"""

import os
import subprocess

from conftest import is_mounted, lazy_unmount, require_binary


def config_home(tmp_path, text):
    """An XDG_CONFIG_HOME whose agentbayfs/config holds TEXT."""
    home = tmp_path / "xdg"
    (home / "agentbayfs").mkdir(parents=True)
    (home / "agentbayfs" / "config").write_text(text)
    return str(home)


SLOW = "import time\ntime.sleep(3)\nprint('done')\n"


def test_file_settings_apply_and_o_overrides_them(mount, tmp_path):
    """`timeout = 1` in the file stops a script sleeping 3 s (timed_out);
    the same file with -o timeout=20 lets it finish. `max_output = 1K` of the
    file applies to both."""
    home = config_home(tmp_path, "# limits for this machine\n\ntimeout = 1\n  max_output = 1K  \nwarm = 0\n")
    m = mount(env={"XDG_CONFIG_HOME": home})
    st = m.save_and_wait("slow.py", SLOW)
    assert st["state"] == "timed_out", st
    st = m.save_and_wait("loud.py", "print('x' * 4000)\n")
    assert st["error"]["name"] == "OutputLimitExceeded" and st["stdout_bytes"] == 1024, st
    m2 = mount(opts=["timeout=20"], env={"XDG_CONFIG_HOME": home})
    st = m2.save_and_wait("slow.py", SLOW)
    assert st["state"] == "succeeded" and m2.read("slow.out") == "done\n", st
    st = m2.save_and_wait("loud.py", "print('x' * 4000)\n")
    assert st["error"]["name"] == "OutputLimitExceeded", st


def run(args, env, mnt):
    e = {k: v for k, v in os.environ.items() if not k.startswith("AGENTBAY_")}
    e.update(env)
    try:
        r = subprocess.run([require_binary()] + args, env=e, stdin=subprocess.DEVNULL, timeout=20,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        return r.returncode, r.stdout, is_mounted(mnt)
    finally:
        lazy_unmount(mnt)


def test_bad_line_stops_the_mount_and_help_still_works(tmp_path):
    """A bad value, an unknown key and a line without '=' each stop the mount
    with "FILE:LINE: why" and nothing mounted; --help and --version still
    work with that file in place."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    for i, (text, needle) in enumerate([
            ("warm = 1\ntimeout = soon\n", ":2: bad timeout 'soon'"),
            ("# x\n\nbogus = 3\n", ":3: unknown setting 'bogus'"),
            ("warm\n", ":1: 'warm' is not a setting"),
    ]):
        home = config_home(tmp_path / str(i), text)
        path = os.path.join(home, "agentbayfs", "config")
        rc, out, mounted = run(["-f", "-o", "store=%s" % (tmp_path / "store"), str(mnt)],
                               {"XDG_CONFIG_HOME": home}, str(mnt))
        assert rc not in (0, None) and not mounted, (text, rc, out)
        assert path + needle in out, (text, out)
        for flag in ("--help", "--version"):
            rc, out, _ = run([flag], {"XDG_CONFIG_HOME": home}, str(mnt))
            assert rc == 0 and "agentbayfs" in out, (flag, out)


def test_unreadable_or_huge_file_is_refused(tmp_path):
    """A configuration file that is a directory, or over 64 KiB: the mount
    stops with a message that names it."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    home = tmp_path / "xdg"
    (home / "agentbayfs" / "config").mkdir(parents=True)
    rc, out, mounted = run(["-f", "-o", "store=%s" % (tmp_path / "s"), str(mnt)],
                           {"XDG_CONFIG_HOME": str(home)}, str(mnt))
    assert rc not in (0, None) and not mounted and "not a regular file" in out, out
    home2 = config_home(tmp_path / "big", "# " + "x" * 70000 + "\n")
    rc, out, mounted = run(["-f", "-o", "store=%s" % (tmp_path / "s"), str(mnt)],
                           {"XDG_CONFIG_HOME": home2}, str(mnt))
    assert rc not in (0, None) and not mounted and "larger than 64 KiB" in out, out

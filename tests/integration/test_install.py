"""Installing agentbayfs like any FUSE file system: `meson install` puts the
binary and the manual page agentbayfs(1) in place, and the page renders with
man(1) without warnings and documents every option --help lists."""

import os
import re
import shutil
import subprocess
import time

import pytest

from conftest import proc_stat, require_binary

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAN_PAGE = os.path.join(REPO, "docs", "agentbayfs.1")


def man(*args):
    if not shutil.which("man"):
        pytest.fail("man(1) is missing: install man-db (scripts/install-deps --test does)")
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8", MANPAGER="cat", PAGER="cat")
    return subprocess.run(["man"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, env=env, timeout=60)


def rendered():
    r = man("-l", MAN_PAGE)
    assert r.returncode == 0, r.stderr
    # Undo the overstriking of bold and underlined text, if any.
    return re.sub(r".\x08", "", r.stdout)


def test_man_page_renders_without_warnings():
    """`man --warnings -l` of the page prints no warning (groff's own checks
    of the macros and of the text)."""
    r = man("--warnings", "-l", MAN_PAGE)
    assert r.returncode == 0, r.stderr
    assert r.stderr == "", "man warned about docs/agentbayfs.1:\n" + r.stderr
    assert "AGENTBAYFS(1)" in r.stdout


def test_man_page_documents_every_option_and_variable():
    """Every agentbayfs option and AgentBay environment variable that
    `agentbayfs --help` lists is in the manual page, as are the result files,
    the exit statuses and the error names of the README."""
    helptext = subprocess.run([require_binary(), "--help"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, timeout=30).stdout
    ours = helptext.split("agentbayfs options:", 1)[1].split("FUSE options:", 1)[0]
    options = sorted(set(re.findall(r"-o ([a-z_]+)=", ours)))
    variables = sorted(set(re.findall(r"\b(AGENTBAY_[A-Z_]+)", ours)))
    assert len(options) >= 20 and len(variables) == 4, (options, variables)
    text = rendered()
    missing = [o for o in options if "-o %s=" % o not in text]
    missing += [v for v in variables if v not in text]
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    errors = re.findall(r"^\| `([A-Z][A-Za-z]+)` \| ", readme, re.M)
    assert len(errors) >= 10, errors
    missing += [e for e in errors if e not in text]
    for word in (".out", ".err", ".error", ".status", "EXIT STATUS", "EXAMPLES", "ENVIRONMENT"):
        if word not in text:
            missing.append(word)
    assert not missing, "not in the manual page: %s" % ", ".join(missing)


def test_meson_install_puts_binary_and_man_page(tmp_path):
    """`meson install` of the build the tests use installs the binary under
    bin/ and the page under share/man/man1/ (into a DESTDIR here)."""
    build = os.path.dirname(require_binary())
    if not os.path.isdir(os.path.join(build, "meson-private")):
        pytest.fail("%s is not a meson build directory" % build)
    dest = tmp_path / "dest"
    r = subprocess.run(["meson", "install", "-C", build, "--no-rebuild", "--destdir", str(dest)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    assert r.returncode == 0, r.stdout
    found = {}
    for root, _, files in os.walk(dest):
        for name in files:
            found[os.path.relpath(os.path.join(root, name), dest)] = os.path.join(root, name)
    binaries = [p for p in found if p.endswith("bin/agentbayfs")]
    pages = [p for p in found if p.endswith("share/man/man1/agentbayfs.1")]
    assert binaries and pages, sorted(found)
    assert os.access(found[binaries[0]], os.X_OK)
    with open(found[pages[0]], encoding="utf-8") as f, open(MAN_PAGE, encoding="utf-8") as g:
        assert f.read() == g.read()


MOUNT_SCRIPT = r"""
set -eu
trap 'umount -l "$MNT" 2>/dev/null || :' EXIT
# mount(8) runs helpers with a standard PATH: the binary under test goes
# into /usr/local/bin, in this mount namespace only.
mount -t tmpfs none /usr/local/bin
ln -s "$BIN" /usr/local/bin/agentbayfs
mount -t fuse.agentbayfs "$STORE" "$MNT" -o warm=0,timeout=20
grep " $MNT fuse.agentbayfs " /proc/self/mounts
echo 'print(6 * 7)' > "$MNT/a.py"
cat "$MNT/a.out"
umount "$MNT"
echo unmounted
mount -T "$FSTAB" "$MNT"
grep " $MNT fuse.agentbayfs " /proc/self/mounts
echo 'print(7 * 7)' > "$MNT/b.py"
cat "$MNT/b.out" "$MNT/a.out"
umount "$MNT"
echo done
"""


def test_mount_t_fuse_agentbayfs_and_an_fstab_line(tmp_path):
    """`mount -t fuse.agentbayfs STORE MOUNTPOINT -o ...` and an fstab line
    (`STORE MOUNTPOINT fuse.agentbayfs OPTIONS 0 0`, given to mount -T) mount
    through the standard mount.fuse3 helper: the daemon goes to the
    background, a saved script runs, the store is the one named, umount
    ends the daemon, and a remount from the fstab line shows the files and
    results of before."""
    if os.geteuid() != 0:
        pytest.skip("mount(8) of a fuse.agentbayfs line needs root (users need 'user' in fstab)")
    for tool in ("mount", "umount", "unshare", "mount.fuse3"):
        if not shutil.which(tool) and not os.path.exists("/sbin/" + tool):
            pytest.fail("%s is missing (util-linux, fuse3)" % tool)
    store, mnt = tmp_path / "store", tmp_path / "mnt"
    store.mkdir()
    mnt.mkdir()
    fstab = tmp_path / "fstab"
    fstab.write_text("%s %s fuse.agentbayfs warm=0,timeout=20,noauto,nofail 0 0\n" % (store, mnt))
    env = dict(os.environ, BIN=require_binary(), STORE=str(store), MNT=str(mnt), FSTAB=str(fstab))
    try:
        r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", MOUNT_SCRIPT],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                           timeout=120)
    finally:
        # umount returns once the kernel has let go; the daemon ends on its
        # own right after (slower under sanitizers).
        deadline = time.monotonic() + 30
        while True:
            left = subprocess.run(["pgrep", "-f", "agentbayfs .*%s" % mnt], stdout=subprocess.PIPE,
                                  text=True).stdout.split()
            if not left or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        for pid in left:
            subprocess.run(["kill", "-9", pid])
    assert r.returncode == 0, "stdout:\n%s\nstderr:\n%s" % (r.stdout, r.stderr)
    lines = r.stdout.splitlines()
    assert lines[1:3] == ["42", "unmounted"], r.stdout
    assert lines[4:] == ["49", "42", "done"], r.stdout
    assert sorted(os.listdir(store)) == [".agentbayfs", "a.py", "b.py"]
    assert not left, "daemons outlived their umount: %s" % left
    # Only the backend choice is said (mount passes the daemon's stderr on).
    for line in r.stderr.splitlines():
        assert "no AgentBay API key is configured" in line, r.stderr


# The units as the build configured them, by the name each is installed as.
UNITS = {"system": "agentbayfs@.service", "user": "user-agentbayfs@.service"}


def built_unit(kind):
    """The text of the built unit of KIND, starting the binary under test."""
    build = os.path.dirname(require_binary())
    path = os.path.join(build, UNITS[kind])
    assert os.path.exists(path), "%s was not built (meson.build configures it)" % path
    with open(path, encoding="utf-8") as f:
        text = f.read()
    execs = re.findall(r"^ExecStart=(\S+)", text, re.M)
    assert execs and execs[0].endswith("/agentbayfs"), execs
    return text.replace(execs[0], require_binary())


@pytest.mark.parametrize("kind", sorted(UNITS))
def test_systemd_unit_verifies(kind, tmp_path):
    """systemd-analyze verify finds nothing wrong with the system and the
    user unit, as an instance for a mountpoint."""
    if not shutil.which("systemd-analyze"):
        pytest.fail("systemd-analyze is missing (install systemd)")
    units = tmp_path / "units"
    units.mkdir()
    text = built_unit(kind)
    (units / "agentbayfs@.service").write_text(text)
    inst = units / "agentbayfs@mnt-agentbay.service"
    inst.write_text(text)
    rundir = tmp_path / "run"
    rundir.mkdir(mode=0o700)
    env = dict(os.environ, SYSTEMD_UNIT_PATH="%s:" % units, XDG_RUNTIME_DIR=str(rundir))
    cmd = ["systemd-analyze"] + (["--user"] if kind == "user" else []) + ["verify", "--man=no", str(inst)]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, timeout=60)
    assert r.returncode == 0 and r.stderr == "", "systemd-analyze verify of the %s unit:\n%s%s" % (
        kind, r.stdout, r.stderr)


def unit_value(text, key):
    return [m.group(1) for m in re.finditer(r"^%s=(.*)$" % key, text, re.M)]


def parent_pid(pid):
    """The parent of process PID, or None once it is gone."""
    st = proc_stat(pid)
    return st[1] if st else None


def test_system_unit_mounts_and_stops_cleanly(tmp_path):
    """The system unit's commands, run the way systemd runs them (Type=forking,
    KillMode=mixed): ExecStartPre makes the mountpoint, ExecStart returns once
    the mount is there with the store under $XDG_STATE_HOME, a saved script
    runs, and SIGTERM to the daemon alone unmounts and ends it (systemd's
    stop)."""
    text = built_unit("system")
    assert unit_value(text, "Type") == ["forking"] and unit_value(text, "KillMode") == ["mixed"]
    mnt = tmp_path / "mnt" / "agentbay"
    state = tmp_path / "state"
    env = dict(os.environ)
    for assignment in unit_value(text, "Environment"):
        k, _, v = assignment.partition("=")
        env[k] = v
    # What a drop-in would say: a state directory of the test's own, options.
    env["XDG_STATE_HOME"] = str(state)
    env["AGENTBAYFS_OPTIONS"] = "-o warm=0,timeout=20"

    def expand(line):
        line = line.replace("%f", str(mnt))
        return [w for part in line.split() for w in
                (env["AGENTBAYFS_OPTIONS"].split() if part == "$AGENTBAYFS_OPTIONS" else [part])]

    for pre in unit_value(text, "ExecStartPre"):
        subprocess.run(expand(pre), check=True, env=env, timeout=30)
    assert mnt.is_dir()
    start = subprocess.run(expand(unit_value(text, "ExecStart")[0]), env=env, timeout=60,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pids = []
    try:
        assert start.returncode == 0, start.stderr
        with open("/proc/self/mounts") as f:
            assert " %s fuse.agentbayfs " % mnt in f.read(), "ExecStart returned before the mount was there"
        # The daemon, not its children: it forks the runs' process guard
        # once it is up, which may be after ExecStart returned.
        found = subprocess.run(["pgrep", "-f", "^%s .*%s$" % (re.escape(require_binary()), mnt)],
                               stdout=subprocess.PIPE, text=True).stdout.split()
        pids = [p for p in found if parent_pid(p) not in found]
        assert len(pids) == 1, found
        (mnt / "u.py").write_text("print('from the unit')\n")
        assert (mnt / "u.out").read_text() == "from the unit\n"
        stores = list((state / "agentbayfs").iterdir())
        assert len(stores) == 1 and (stores[0] / "u.py").exists(), stores
        os.kill(int(pids[0]), 15)
        deadline = time.monotonic() + 20
        while os.path.exists("/proc/%s" % pids[0]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not os.path.exists("/proc/%s" % pids[0]), "the daemon did not end on SIGTERM"
        with open("/proc/self/mounts") as f:
            assert " %s " % mnt not in f.read(), "still mounted after the daemon ended"
    finally:
        for pid in pids:
            if os.path.exists("/proc/%s" % pid):
                os.kill(int(pid), 9)
        subprocess.run(["umount", "-l", str(mnt)], stderr=subprocess.DEVNULL)

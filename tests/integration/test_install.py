"""Installing agentbayfs like any FUSE file system: `meson install` puts the
binary and the manual page agentbayfs(1) in place, and the page renders with
man(1) without warnings and documents every option --help lists."""

import os
import re
import shutil
import subprocess

import pytest

from conftest import require_binary

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

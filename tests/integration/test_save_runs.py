"""Every save of an eligible script runs it exactly once; nothing else does."""

import os
import shutil
import subprocess
import sys
import threading

import pytest

from conftest import SETTLE


def py(text):
    return "print(%r)\n" % text


def js(text):
    return "console.log(%s);\n" % ("'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'")


def sh(cmd, cwd, timeout=20):
    r = subprocess.run(["sh", "-c", cmd], cwd=cwd, timeout=timeout,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert r.returncode == 0, "%r failed (%d): %s" % (cmd, r.returncode, r.stderr)
    return r.stdout


def test_cp_new_file_runs_once(fs, tmp_path):
    """cp of a new script into the mount runs it exactly once with its output."""
    src = tmp_path / "a.py"
    src.write_text(py("hello from cp"))
    subprocess.run(["cp", str(src), fs.path("a.py")], check=True, timeout=20)
    st = fs.wait_run("a", 1)
    assert st["state"] == "succeeded", st
    assert st["script"] == "a.py"
    assert fs.read("a.out") == "hello from cp\n"
    fs.assert_runs("a", 1)
    with open(fs.store_path("a.py")) as f:
        assert f.read() == py("hello from cp")


def test_cp_over_existing_runs_once(fs, tmp_path):
    """cp over an existing script runs the new content exactly once more."""
    fs.save_and_wait("a.py", py("first"))
    src = tmp_path / "a.py"
    src.write_text(py("second"))
    subprocess.run(["cp", str(src), fs.path("a.py")], check=True, timeout=20)
    st = fs.wait_run("a", 2)
    assert fs.read("a.out") == "second\n"
    assert st["state"] == "succeeded"
    fs.assert_runs("a", 2)


def test_shell_redirect_truncate(fs):
    """Shell '>' (create, then truncate-and-write, then truncate only) is one run per save."""
    sh("echo 'print(\"one\")' > a.py", fs.mnt)
    fs.wait_run("a", 1)
    assert fs.read("a.out") == "one\n"
    fs.assert_runs("a", 1)
    sh("echo 'print(\"two\")' > a.py", fs.mnt)
    fs.wait_run("a", 2)
    assert fs.read("a.out") == "two\n"
    fs.assert_runs("a", 2)
    sh(": > a.py", fs.mnt)  # O_TRUNC without any write still changes the content
    st = fs.wait_run("a", 3)
    assert st["state"] == "succeeded", st
    assert fs.read("a.out") == ""
    fs.assert_runs("a", 3)


def test_shell_append(fs):
    """Shell '>>' onto an existing script runs it once with both lines."""
    fs.save_and_wait("a.py", py("line1"))
    sh("echo 'print(\"line2\")' >> a.py", fs.mnt)
    fs.wait_run("a", 2)
    assert fs.read("a.out") == "line1\nline2\n"
    fs.assert_runs("a", 2)


def test_tee(fs):
    """tee into the mount runs the script once."""
    r = subprocess.run(["tee", fs.path("t.py")], input=py("via tee"), text=True,
                       stdout=subprocess.DEVNULL, timeout=20)
    assert r.returncode == 0
    fs.wait_run("t", 1)
    assert fs.read("t.out") == "via tee\n"
    fs.assert_runs("t", 1)


def test_python_program_writes_script(fs):
    """A Python program writing a script in several write() calls causes one run."""
    prog = ("import sys\n"
            "with open(sys.argv[1], 'w') as f:\n"
            "    for i in range(5):\n"
            "        f.write('print(%d)\\n' % i)\n"
            "        f.flush()\n")
    subprocess.run([sys.executable, "-c", prog, fs.path("p.py")], check=True, timeout=20)
    fs.wait_run("p", 1)
    assert fs.read("p.out") == "0\n1\n2\n3\n4\n"
    fs.assert_runs("p", 1)


def test_node_program_writes_script(fs):
    """A Node program using fs.writeFileSync causes one run (twice -> two runs)."""
    for run, text in ((1, "node wrote 1"), (2, "node wrote 2")):
        prog = "require('fs').writeFileSync(process.argv[1], %r)" % py(text)
        subprocess.run(["node", "-e", prog, fs.path("n.py")], check=True, timeout=20)
        fs.wait_run("n", run)
        assert fs.read("n.out") == text + "\n"
        fs.assert_runs("n", run)


def test_sed_in_place(fs):
    """sed -i (temp file renamed over the script) runs the edited script once."""
    fs.save_and_wait("a.py", py("before sed"))
    subprocess.run(["sed", "-i", "s/before/after/", fs.path("a.py")], check=True, timeout=20)
    fs.wait_run("a", 2)
    assert fs.read("a.out") == "after sed\n"
    fs.assert_runs("a", 2)
    assert fs.status_files() == ["a.status"]
    assert not [n for n in fs.listdir() if n.startswith("sed")]


def test_mv_onto_eligible_name(fs):
    """Renaming a non-eligible file onto an eligible name runs it once."""
    fs.write("draft.txt", py("moved in"))
    fs.assert_no_run("draft.txt")
    subprocess.run(["mv", fs.path("draft.txt"), fs.path("m.py")], check=True, timeout=20)
    fs.wait_run("m", 1)
    assert fs.read("m.out") == "moved in\n"
    fs.assert_runs("m", 1)
    assert fs.status_files() == ["m.status"]


def test_mv_from_outside_mount(fs, tmp_path):
    """mv of a script from outside the mount (copy + unlink) runs it once."""
    src = tmp_path / "o.py"
    src.write_text(py("from outside"))
    subprocess.run(["mv", str(src), fs.path("o.py")], check=True, timeout=20)
    fs.wait_run("o", 1)
    assert fs.read("o.out") == "from outside\n"
    fs.assert_runs("o", 1)


def test_rename_over_existing_script(fs):
    """os.rename of a new file over an existing script runs the new content once."""
    fs.save_and_wait("a.py", py("old"))
    fs.write("a.py.new", py("new"))
    os.rename(fs.path("a.py.new"), fs.path("a.py"))
    fs.wait_run("a", 2)
    assert fs.read("a.out") == "new\n"
    fs.assert_runs("a", 2)
    assert fs.status_files() == ["a.status"]


def test_touch_and_chmod_do_not_run(fs):
    """touch, utime and chmod of a script are not saves."""
    fs.save_and_wait("a.py", py("once"))
    subprocess.run(["touch", fs.path("a.py")], check=True, timeout=20)
    os.utime(fs.path("a.py"), (1000000000, 1000000000))
    os.chmod(fs.path("a.py"), 0o755)
    subprocess.run(["chmod", "600", fs.path("a.py")], check=True, timeout=20)
    fs.assert_runs("a", 1, settle=SETTLE * 2)


def test_touch_new_empty_file(fs):
    """touch creating a new script runs it at most once; touching it again never runs it."""
    subprocess.run(["touch", fs.path("e.py")], check=True, timeout=20)
    # Whether creating an empty file by touch is a save is left open by the
    # spec ("create" is a save, "touch" is not): accept 0 or 1 run.
    st = fs.wait_for_status("e", lambda s: s["state"] in ("succeeded", "failed"), timeout=3) \
        if fs.try_status("e") is not None else None
    before = st["run"] if st else 0
    assert before <= 1, st
    subprocess.run(["touch", fs.path("e.py")], check=True, timeout=20)
    os.utime(fs.path("e.py"))
    if before:
        fs.assert_runs("e", before)
    else:
        fs.assert_no_run("e.py")


def test_read_does_not_run(fs):
    """Reading a script (cat, open for reading) does not run it."""
    fs.save_and_wait("a.py", py("read me"))
    subprocess.run(["cat", fs.path("a.py")], check=True, timeout=20, stdout=subprocess.DEVNULL)
    with open(fs.path("a.py")) as f:
        assert f.read() == py("read me")
    subprocess.run(["cp", fs.path("a.py"), fs.path("copy.txt")], check=True, timeout=20)
    fs.assert_runs("a", 1)


def test_open_close_without_write_does_not_run(fs):
    """Opening a script for writing and closing it without writing is not a save."""
    fs.save_and_wait("a.py", py("untouched"))
    for flags in (os.O_WRONLY, os.O_RDWR, os.O_WRONLY | os.O_APPEND):
        fd = os.open(fs.path("a.py"), flags)
        os.close(fd)
    with open(fs.path("a.py"), "a"):
        pass
    with open(fs.path("a.py"), "r+"):
        pass
    fs.assert_runs("a", 1)
    assert fs.read("a.out") == "untouched\n"


@pytest.mark.parametrize("name", [".x.py.swp", "4913", "x.py~", "#x.py#", ".#x.py",
                                  ".hidden.py", "sedAbC123", "x.py.bak", "x.pyc"])
def test_helper_files_never_run(fs, name):
    """Editor helper and other non-eligible files never get result files."""
    fs.write(name, py("must not run"))
    with open(fs.path(name), "a") as f:
        f.write(py("still not"))
    fs.assert_no_run(name)
    assert fs.status_files() == []
    assert sorted(fs.listdir()) == [name]


def test_twenty_scripts_saved_at_once(fs):
    """20 scripts saved concurrently from threads each run exactly once with their own output."""
    n = 20
    barrier = threading.Barrier(n)
    errors = []

    def save(i):
        try:
            barrier.wait(10)
            fs.write("s%02d.py" % i, "print('script %d', %d * 3)\n" % (i, i))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=save, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not errors, errors
    for i in range(n):
        st = fs.wait_run("s%02d" % i, 1, timeout=45)
        assert st["state"] == "succeeded", st
        assert fs.read("s%02d.out" % i) == "script %d %d\n" % (i, i * 3)
    for i in range(n):
        st = fs.status("s%02d" % i)
        assert st["run"] == 1, st
    assert len(fs.status_files()) == n


def test_subdirectory_scripts(fs, tmp_path):
    """Scripts in subdirectories run and get their results beside them."""
    os.mkdir(fs.path("sub"))
    os.makedirs(fs.path("sub/deeper/still"))
    src = tmp_path / "x.py"
    src.write_text("import os\nprint('in sub', os.path.basename(__file__))\n")
    subprocess.run(["cp", str(src), fs.path("sub/")], check=True, timeout=20)
    st = fs.wait_run("sub/x", 1)
    assert st["state"] == "succeeded", (st, fs.read("sub/x.error"))
    assert st["script"] == "x.py"
    assert fs.read("sub/x.out") == "in sub x.py\n"
    assert "x.status" not in fs.listdir()
    fs.write("sub/deeper/still/y.js", js("deep js"))
    fs.wait_run("sub/deeper/still/y", 1)
    assert fs.read("sub/deeper/still/y.out") == "deep js\n"
    assert fs.listdir("sub/deeper/still") == ["y.err", "y.error", "y.js", "y.out", "y.status"]
    fs.assert_runs("sub/x", 1)
    fs.assert_runs("sub/deeper/still/y", 1, settle=0)
    assert os.path.isfile(fs.store_path("sub/deeper/still/y.js"))


def test_js_script(fs):
    """A .js script runs under node; its status says javascript."""
    st = fs.save_and_wait("hello.js", "const xs = [1, 2, 3];\nconsole.log('sum', xs.reduce((a, b) => a + b));\n")
    assert st["state"] == "succeeded", (st, fs.read("hello.error"))
    assert st["language"] == "javascript"
    assert st["script"] == "hello.js"
    assert st["backend"] == "local"
    assert st["exit_code"] == 0
    assert fs.read("hello.out") == "sum 6\n"
    assert fs.read("hello.error") == ""
    fs.assert_runs("hello", 1)


def test_python_script_status_language(fs):
    """A .py script runs under python; its status says python."""
    st = fs.save_and_wait("hello.py", py("py ok"))
    assert st["language"] == "python"
    assert st["script"] == "hello.py"
    assert st["backend"] == "local"


def test_py_and_js_same_stem_last_saved_owns(fs):
    """With a.py and a.js both present, the one saved last owns a.out/a.status."""
    fs.write("a.py", py("from python"))
    fs.wait_for_status("a", lambda s: s["script"] == "a.py" and s["state"] in
                       ("succeeded", "failed"), what="a.py finished")
    assert fs.read("a.out") == "from python\n"
    fs.write("a.js", js("from node"))
    st = fs.wait_for_status("a", lambda s: s["script"] == "a.js" and s["state"] in
                            ("succeeded", "failed"), what="a.js finished")
    assert st["language"] == "javascript"
    assert fs.read("a.out") == "from node\n"
    fs.write("a.py", py("python again"))
    st = fs.wait_for_status("a", lambda s: s["script"] == "a.py" and s["state"] in
                            ("succeeded", "failed"), what="a.py finished again")
    assert st["language"] == "python"
    assert fs.read("a.out") == "python again\n"
    assert fs.status_files() == ["a.status"]

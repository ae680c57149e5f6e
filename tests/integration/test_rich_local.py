"""Rich results of the local backend's Python runs, in .status and as files.

The bootstrap reports the main result the notebook way (the value of the
script's last statement when that is an expression: repr() as text/plain,
plus the IPython _repr_*_ forms the value has) and every open matplotlib
figure as image/png. The run's .status sums them up in "results": one entry
per result, in order (figures first, then the main result), each with
"is_main_result", "types" (its MIME types) and "text" (its text/plain);
the main result's text is "<stem>.result" and the other forms are the
files of "<stem>.results/".

Every test runs three times: forked from the fork server (the default), with
a warm spare taking the run (-o warm=1,forkserver=off, after a first run,
waiting for an idle spare before each save) and cold (-o
warm=0,forkserver=off), since the bootstrap goes different ways in each.
"""

import json
import os
import time

import pytest

from test_pool import wait_pool


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Runs:
    """A mount whose Python runs come from the fork server, take a warm
    spare each (warm) or start cold."""

    def __init__(self, m, warm):
        self.m = m
        self.warm = warm
        if warm:
            self.m.save_and_wait("warmup.py", "print('warm up')\n")

    def run(self, name, code, timeout=30.0):
        if self.warm:
            wait_pool(self.m, lambda pool: pool.idle_of("py"), "an idle python spare")
        return self.m.save_and_wait(name, code, timeout)

    def __getattr__(self, attr):
        return getattr(self.m, attr)


@pytest.fixture(params=["forkserver=on", "warm=1,forkserver=off", "warm=0,forkserver=off"],
                ids=["forked", "warm", "cold"])
def runs(request, mount):
    return Runs(mount(opts=request.param.split(",")), request.param.startswith("warm=1"))


def require_matplotlib(r):
    """Skips the test unless the mount's interpreter, in its sandbox, has
    matplotlib (Debian: python3-matplotlib, see scripts/install-deps --test)."""
    r.m.save_and_wait("probe.py", "import importlib.util\nprint(importlib.util.find_spec('matplotlib') is not None)\n")
    if r.read("probe.out") != "True\n":
        pytest.skip("matplotlib is not installed for the mount's python3 (python3-matplotlib)")


def results(st):
    return st.get("results") or []


def first_line(text):
    return text.split("\n", 1)[0]


def assert_ok(r, stem, st):
    assert st["state"] == "succeeded", "%s\nerror: %s\nerr: %s" % (st, r.read(stem + ".error"), r.read(stem + ".err"))


# ----------------------------------------------------------------------------
# The main result
# ----------------------------------------------------------------------------

def test_last_expression_is_the_main_result(runs):
    """`1+1` as the last line: the main result, text/plain "2"; nothing printed."""
    st = runs.run("a.py", "x = 40\n1+1\n")
    assert_ok(runs, "a", st)
    assert results(st) == [{"is_main_result": True, "types": ["text/plain"], "text": "2"}], st
    assert runs.read("a.out") == "" and runs.read("a.err") == ""
    assert runs.read("a.result") == "2\n"
    assert "a.result" in os.listdir(runs.mnt) and not os.path.exists(runs.path("a.results"))
    st = runs.run("b.py", "import sys\nx = 'a\\nb'\nx\n")
    assert results(st) == [{"is_main_result": True, "types": ["text/plain"], "text": "'a\\nb'"}], st


@pytest.mark.parametrize("code", [
    "print('hi')\n",                    # an expression whose value is None
    "x = 1 + 1\n",                      # not an expression
    "def f():\n    return 5\n",
    "None\n",
    "'''only a docstring'''\n",         # the module's docstring, not a value
    "if True:\n    7\n",                # not at the top level
    "",
], ids=["print", "assignment", "def", "None", "docstring", "nested", "empty"])
def test_no_main_result(runs, code):
    """A last statement that is not an expression, or whose value is None:
    no result at all."""
    st = runs.run("n.py", code)
    assert_ok(runs, "n", st)
    assert results(st) == [], st
    assert not os.path.exists(runs.path("n.result"))


@pytest.mark.parametrize("code,text", [
    ("def f(*a):\n    return len(a)\nf(\n1,\n2,\n)\n# the end\n\n", "2"),
    ("def f(s):\n    return s.count('if')\nf('''\nif x:\n  y\n''')\n", "1"),
    ("x = 5\ny = '''\nx\n'''\n", None),
    ("x = 1 + \\\n2\nx * \\\n3\n", "9"),
    ("x = 2; x * 4\n", "8"),
    ("import sys\r\nsys.argv\r\n", "['l.py']"),
    ("# -*- coding: latin-1 -*-\ns = 'caf\xe9'\nlen(s)\n", "4"),
    ("from __future__ import annotations\nv: int = 3\nv\n", "3"),
    ("async def f():\n    return 1\nimport asyncio\nasyncio.run(f())\n", "1"),
    ("[i *\ni for i in range(3)]\n", "[0, 1, 4]"),
], ids=["multiline", "string", "in-string", "continued", "semicolon", "crlf", "latin-1", "future", "asyncio",
        "comprehension"])
def test_where_the_last_statement_starts(runs, code, text):
    """The last statement is found wherever it starts: lines of it at
    column 0, strings and continued lines spanning lines, several statements
    on the last line, CRLF newlines, another encoding."""
    data = code.encode("latin-1") if "latin-1" in code else code.encode()
    st = runs.run("l.py", data)
    assert_ok(runs, "l", st)
    want = [] if text is None else [{"is_main_result": True, "types": ["text/plain"], "text": text}]
    assert results(st) == want, st


@pytest.mark.deadline(120)
def test_large_script(runs):
    """A script of 600 KiB ending with an expression: its main result, and an
    exception in that expression shows the right line; it takes no longer
    than the same script with a statement last."""
    body = "".join("def f%d(a, b=%d):\n    return [a * b + %d for _ in range(3)]\n" % (i, i, i)
                   for i in range(9000))
    n = body.count("\n")
    big = st = runs.run("big.py", body + "f7(2)\n", timeout=90)
    assert_ok(runs, "big", st)
    assert results(st) == [{"is_main_result": True, "types": ["text/plain"], "text": "[21, 21, 21]"}], st
    runs.allow_log("ZeroDivisionError")
    st = runs.run("bad.py", body + "f7(\n2,\n1 / 0)\n", timeout=90)
    assert st["state"] == "failed" and st["error"]["name"] == "ZeroDivisionError", st
    text = runs.read("bad.error")
    assert 'File "bad.py", line %d, in <module>' % (n + 3) in text and "1 / 0" in text, text
    plain = runs.run("plain.py", body + "x = f7(2)\n", timeout=90)
    assert big["duration_ms"] < 2 * plain["duration_ms"] + 200, (big, plain)


def test_semantics_unchanged(runs):
    """Splitting off the last expression changes nothing the script sees:
    __name__, __file__, sys.argv, the module's docstring, globals defined
    before it, exit code 0; the value is computed once."""
    code = ('"""doc"""\n'
            "import sys\n"
            "calls = []\n"
            "def value():\n"
            "    calls.append(1)\n"
            "    return (__name__, __file__, sys.argv, __doc__, len(calls), sys.modules['__main__'].calls is calls)\n"
            "value()\n")
    st = runs.run("s.py", code)
    assert_ok(runs, "s", st)
    assert st["exit_code"] == 0
    assert results(st) == [{"is_main_result": True, "types": ["text/plain"],
                            "text": "('__main__', 's.py', ['s.py'], 'doc', 1, True)"}], st


def test_repr_forms(runs):
    """An object with IPython's _repr_*_ methods: each form it gives is in the
    bundle (image/png as valid base64, JSON as JSON text); one that raises,
    returns None or the wrong type is left out; (data, metadata) pairs count."""
    code = r'''
class Rich:
    def __repr__(self):
        return "Rich()"
    def _repr_html_(self):
        return "<b>rich</b>"
    def _repr_markdown_(self):
        raise RuntimeError("no markdown")
    def _repr_svg_(self):
        return None
    def _repr_png_(self):
        return b"\x89PNG\r\n\x1a\n-not-really"
    def _repr_jpeg_(self):
        return 42
    def _repr_latex_(self):
        return ("$x^2$", {"isolated": True})
    def _repr_json_(self):
        return {"a": [1, 2]}
Rich()
'''
    st = runs.run("r.py", code)
    assert_ok(runs, "r", st)
    assert results(st) == [{"is_main_result": True,
                            "types": ["text/plain", "text/html", "image/png", "text/latex", "application/json"],
                            "text": "Rich()"}], st
    assert runs.read("r.err") == ""
    # The main result's text is r.result; the other forms are files holding
    # what the methods gave.
    assert runs.read("r.result") == "Rich()\n"
    files = sorted(os.listdir(runs.path("r.results")))
    assert files == ["1.html", "2.png", "3.tex", "4.json"], files
    assert runs.read_bytes("r.results/2.png") == b"\x89PNG\r\n\x1a\n-not-really"
    assert runs.read("r.results/3.tex") == "$x^2$"
    assert json.loads(runs.read("r.results/4.json")) == {"a": [1, 2]}


def test_html_only(runs):
    """The value's _repr_html_ is in the bundle beside its repr."""
    st = runs.run("h.py", "class T:\n    def _repr_html_(self):\n        return '<table></table>'\n"
                          "    def __repr__(self):\n        return 'T'\nT()\n")
    assert_ok(runs, "h", st)
    assert results(st) == [{"is_main_result": True, "types": ["text/plain", "text/html"], "text": "T"}], st


def test_failing_repr(runs):
    """A value whose repr() raises: no main result, and the run still succeeds
    with nothing on stderr. A class with _repr_html_ as a method shows its
    repr only."""
    st = runs.run("f.py", "class Bad:\n    def __repr__(self):\n        raise ValueError('no')\n"
                          "    def _repr_html_(self):\n        return '<i>x</i>'\nBad()\n")
    assert_ok(runs, "f", st)
    assert results(st) == [], st
    assert runs.read("f.err") == ""
    st = runs.run("c.py", "class K:\n    def _repr_html_(self):\n        return 'h'\nK\n")
    assert_ok(runs, "c", st)
    assert results(st) == [{"is_main_result": True, "types": ["text/plain"],
                            "text": "<class '__main__.K'>"}], st


# ----------------------------------------------------------------------------
# Errors stay as they were
# ----------------------------------------------------------------------------

def test_last_expression_raises(runs):
    """An exception raised in the last expression is reported as any other:
    the .error's first line, and a traceback that names the script's lines
    and never the bootstrap."""
    runs.allow_log("KeyError")
    code = "def g(d):\n    return d['missing']\n\ng({})\n"
    st = runs.run("k.py", code)
    assert st["state"] == "failed" and st["exit_code"] == 1, st
    assert st["error"] == {"name": "KeyError", "value": "'missing'"}, st
    assert results(st) == [], st
    text = runs.read("k.error")
    assert first_line(text) == "KeyError: 'missing'", text
    assert text.split("\n")[1] == "Traceback (most recent call last):", text
    assert 'File "k.py", line 4, in <module>' in text and 'File "k.py", line 2, in g' in text, text
    assert "_agentbayfs" not in text and "<string>" not in text, text
    err = runs.read("k.err")
    assert err.startswith("Traceback (most recent call last):\n") and "_agentbayfs" not in err, err
    # The same script with a statement after it (so it is run as a whole)
    # fails with the same traceback.
    st2 = runs.run("k2.py", code + "pass\n")
    assert st2["error"] == st["error"]
    assert runs.read("k2.error").replace("k2.py", "k.py") == text


def test_last_expression_exits(runs):
    """sys.exit(N) as the last expression is an exit, as before."""
    runs.allow_log("SystemExit")
    st = runs.run("e.py", "import sys\nsys.exit(4)\n")
    assert st["state"] == "failed" and st["exit_code"] == 4 and st["error"]["name"] == "SystemExit", st
    assert first_line(runs.read("e.error")) == "SystemExit: 4"
    st = runs.run("z.py", "import sys\nsys.exit(0)\n")
    assert_ok(runs, "z", st)
    assert results(st) == [], st


@pytest.mark.parametrize("source", [
    "def broken(:\n    pass\n",          # from the parser
    "x = 1\nreturn x\n",                # from the compiler
    "print('a')\n  1 + 1\n",            # an indentation error
], ids=["parser", "compiler", "indent"])
def test_syntax_error_as_before(runs, source):
    """A syntax error is reported exactly as compile() raises it."""
    runs.allow_log("SyntaxError|IndentationError")
    try:
        compile(source.encode(), "bad.py", "exec")
    except SyntaxError as e:
        expected = e
    st = runs.run("bad.py", source)
    assert st["state"] == "failed" and st["exit_code"] == 1, st
    assert results(st) == [], st
    assert st["error"]["name"] == type(expected).__name__, st
    text = runs.read("bad.error")
    assert first_line(text) == "%s: %s" % (type(expected).__name__, st["error"]["value"]), text
    assert expected.msg in st["error"]["value"] and "line %d" % expected.lineno in st["error"]["value"], st
    assert 'File "bad.py", line %d' % expected.lineno in text, text
    assert "During handling" not in text and "_agentbayfs" not in text, text


# ----------------------------------------------------------------------------
# matplotlib
# ----------------------------------------------------------------------------

def test_no_matplotlib_unless_imported(runs):
    """A script that does not use matplotlib never has it imported, also when
    there is a main result to report."""
    st = runs.run("m.py", "import atexit, sys\n"
                          "atexit.register(lambda: print('matplotlib' in sys.modules))\n"
                          "6 * 7\n")
    assert_ok(runs, "m", st)
    assert runs.read("m.out") == "False\n"
    assert results(st) == [{"is_main_result": True, "types": ["text/plain"], "text": "42"}], st


@pytest.mark.deadline(120)
def test_figures(runs):
    """Two figures: two results with image/png, in creation order, before the
    main result; plt.show() says nothing on stderr; a figure closed before
    the end is not reported."""
    require_matplotlib(runs)
    code = ("import matplotlib.pyplot as plt\n"
            "plt.plot([1, 2, 3])\n"
            "fig = plt.figure(figsize=(3, 2))\n"
            "fig.add_subplot(1, 2, 1).bar([1, 2], [3, 4])\n"
            "fig.add_subplot(1, 2, 2)\n"
            "plt.figure()\n"
            "plt.close()\n"
            "plt.show()\n"
            "'done'\n")
    st = runs.run("p.py", code, timeout=60)
    assert_ok(runs, "p", st)
    assert results(st) == [
        {"is_main_result": False, "types": ["text/plain", "image/png"], "text": "<Figure size 640x480 with 1 Axes>"},
        {"is_main_result": False, "types": ["text/plain", "image/png"], "text": "<Figure size 300x200 with 2 Axes>"},
        {"is_main_result": True, "types": ["text/plain"], "text": "'done'"},
    ], st
    assert runs.read("p.err") == ""
    assert sorted(os.listdir(runs.path("p.results"))) == ["1.png", "2.png"]
    for f in ("1.png", "2.png"):
        assert runs.read_bytes("p.results/" + f).startswith(PNG_MAGIC)
    assert runs.read("p.result") == "'done'\n"


@pytest.mark.deadline(120)
def test_figures_of_a_failed_run(runs):
    """Figures made before an exception still count; the error is as usual."""
    require_matplotlib(runs)
    runs.allow_log("ZeroDivisionError")
    st = runs.run("q.py", "import matplotlib\nimport matplotlib.pyplot as plt\n"
                          "print(matplotlib.get_backend())\nplt.plot([1, 2])\n1 / 0\n", timeout=60)
    assert st["state"] == "failed" and st["error"]["name"] == "ZeroDivisionError", st
    assert runs.read("q.out").strip().lower() == "agg"
    assert results(st) == [{"is_main_result": False, "types": ["text/plain", "image/png"],
                            "text": "<Figure size 640x480 with 1 Axes>"}], st
    text = runs.read("q.error")
    assert first_line(text) == "ZeroDivisionError: division by zero"
    assert 'File "q.py", line 5, in <module>' in text and "_agentbayfs" not in text, text


@pytest.mark.deadline(180)
def test_many_figures(runs):
    """Twenty figures of some size: all of them, in order, in reasonable time."""
    require_matplotlib(runs)
    code = ("import matplotlib.pyplot as plt\n"
            "import random\n"
            "random.seed(1)\n"
            "for i in range(20):\n"
            "    plt.figure(figsize=(8, 6), dpi=100)\n"
            "    plt.scatter([random.random() for _ in range(3000)], [random.random() for _ in range(3000)], s=2)\n"
            "    plt.title('figure %d' % i)\n")
    t0 = time.monotonic()
    st = runs.run("many.py", code, timeout=150)
    took = time.monotonic() - t0
    assert_ok(runs, "many", st)
    res = results(st)
    assert len(res) == 20 and not any(r["is_main_result"] for r in res), st
    assert all(r["types"] == ["text/plain", "image/png"] for r in res), st
    assert not st["truncated"], st
    print("20 figures: %.2f s" % took)


# ----------------------------------------------------------------------------
# Size limits
# ----------------------------------------------------------------------------

@pytest.mark.deadline(120)
def test_oversized_result_is_dropped_not_the_run(runs):
    """A main result larger than the results' limit (16 MiB) is dropped; the
    run still ends as it did, marked truncated. One under it is kept."""
    st = runs.run("big.py", "import sys\nprint('before')\n'x' * (17 << 20)\n", timeout=90)
    assert_ok(runs, "big", st)
    assert results(st) == [] and st["truncated"] is True, {k: v for k, v in st.items()}
    assert runs.read("big.out") == "before\n"
    st = runs.run("ok.py", "import base64\nclass P:\n"
                           "    def _repr_png_(self):\n        return bytes(range(256)) * 4096\n"
                           "    def __repr__(self):\n        return 'P'\nP()\n", timeout=90)
    assert_ok(runs, "ok", st)
    assert results(st) == [{"is_main_result": True, "types": ["text/plain", "image/png"], "text": "P"}], st
    assert st["truncated"] is False
    assert runs.read_bytes("ok.results/1.png") == bytes(range(256)) * 4096
    assert runs.read("ok.result") == "P\n"
    assert not os.path.exists(runs.path("big.result"))

"""Tests of the fake AgentBay service (tests/fake_agentbay.py) itself.

The fake is test infrastructure: these tests prove that it speaks the
protocol, is strict about requests, really runs code and that every fault and
variant switch does what it says.  They drive it over real HTTP with
urllib.request (and http.client where urllib cannot build the request).
"""

import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TESTS_DIR)
import fake_agentbay  # noqa: E402

KEY = "akm-test-" + uuid.uuid4().hex[:12]
HAVE_NODE = fake_agentbay.shutil.which("node") is not None


# ---------------------------------------------------------------------------
# A small client
# ---------------------------------------------------------------------------

class Reply:
    def __init__(self, status, body, headers=None):
        self.status = status
        self.body = body
        self.headers = headers or {}

    @property
    def json(self):
        return json.loads(self.body)


def timestamp():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def build(action, form=None, query=None, key=KEY, drop=(), headers=None):
    """Returns (path, body bytes, headers) of a request as the SDKs send it.

    drop: names of query parameters or headers to leave out."""
    q = {"Action": action, "Format": "json", "Version": "2025-05-06",
         "Timestamp": timestamp(), "SignatureNonce": uuid.uuid4().hex}
    q.update(query or {})
    q = {k: v for k, v in q.items() if k not in drop}
    f = {"Authorization": "Bearer " + key} if key is not None else {}
    f.update(form or {})
    h = {"x-acs-action": q.get("Action", action), "x-acs-version": q.get("Version", ""),
         "Content-Type": "application/x-www-form-urlencoded",
         "User-Agent": "AlibabaCloud (test) TeaDSL/2"}
    h.update(headers or {})
    h = {k: v for k, v in h.items() if k not in drop}
    return "/?" + urllib.parse.urlencode(q), urllib.parse.urlencode(f).encode("ascii"), h


def post(url, action, form=None, timeout=30, method="POST", **kw):
    path, body, headers = build(action, form, **kw)
    req = urllib.request.Request(url + path, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return Reply(r.status, r.read(), dict(r.headers))
    except urllib.error.HTTPError as e:
        return Reply(e.code, e.read(), dict(e.headers))


def admin(url, op, obj=None):
    data = None if obj is None else json.dumps(obj).encode()
    req = urllib.request.Request(url + "/_admin/" + op, data=data,
                                 method="GET" if obj is None else "POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def args(code, language="python", timeout_s=10):
    return json.dumps({"code": code, "language": language, "timeout_s": timeout_s},
                      ensure_ascii=False)


def create(url, image="code_latest"):
    r = post(url, "CreateMcpSession", {"ImageId": image,
                                       "SdkStats": json.dumps({"source": "sdk"})})
    assert r.status == 200, r.body
    env = r.json
    assert env["Success"] is True and env["Code"] == "ok" and env["HttpStatusCode"] == 200
    return env["Data"]["SessionId"]


def release(url, sid):
    r = post(url, "ReleaseMcpSession", {"SessionId": sid})
    assert r.status == 200, r.body
    assert r.json["Success"] is True and "Data" not in r.json


def call(url, sid, code, language="python", timeout_s=10, extra=None, **kw):
    form = {"SessionId": sid, "Name": "run_code", "Args": args(code, language, timeout_s),
            "AutoGenSession": "false", "Server": ""}
    form.update(extra or {})
    return post(url, "CallMcpTool", form, **kw)


def run(url, sid, code, language="python", timeout_s=10):
    """run_code; returns (isError, inner dict)."""
    r = call(url, sid, code, language, timeout_s)
    assert r.status == 200, r.body
    data = r.json["Data"]
    assert data["content"][0]["type"] == "text"
    return data["isError"], json.loads(data["content"][0]["text"])


def main_result(inner):
    items = [json.loads(x) for x in inner["result"]]
    mains = [i for i in items if i.get("isMainResult")]
    return mains[0] if mains else None


def pop_error(reply, status, code):
    assert reply.status == status, (reply.status, reply.body)
    body = reply.json
    assert set(body) == {"RequestId", "HostId", "Code", "Message", "Recommend"}, body
    assert body["Code"] == code, body
    assert body["RequestId"] and body["HostId"] and body["Message"]
    return body


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False


def wait_dead(pids, limit=5.0):
    end = time.monotonic() + limit
    while time.monotonic() < end and any(alive(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fake():
    f = fake_agentbay.FakeAgentBay(KEY)
    f.start()
    yield f
    pids = [k["pid"] for k in f.stats()["kernels"]]
    f.stop()
    assert wait_dead(pids) == []


@pytest.fixture
def url(fake):
    fake.reset()
    yield fake.url
    fake.reset()


@pytest.fixture
def sid(url):
    s = create(url)
    yield s
    post(url, "ReleaseMcpSession", {"SessionId": s})


# ---------------------------------------------------------------------------
# Happy paths and code execution
# ---------------------------------------------------------------------------

def test_happy_path(fake, url):
    before = fake.stats()
    r = post(url, "CreateMcpSession", {"ImageId": "code_latest", "LoginRegionId": "cn-hangzhou",
                                       "Labels": json.dumps({"project": "t"}),
                                       "SdkStats": json.dumps({"source": "sdk"})})
    assert r.status == 200 and r.headers["Content-Type"].startswith("application/json")
    data = r.json["Data"]
    sid = data["SessionId"]
    assert len(sid) == len("session-") + 16 and sid.startswith("session-")
    assert sid[8:].isalnum() and sid[8:] == sid[8:].lower()
    assert data["Success"] is True and isinstance(data["HttpPort"], str)
    tools = json.loads(data["ToolList"])
    assert {"name": "run_code", "server": "wuying_codespace"}.items() <= tools[0].items()

    err, inner = run(url, sid, 'print("hi")\nx=41\nx+1')
    assert err is False
    assert "".join(inner["stdout"]) == "hi\n" and inner["stderr"] == []
    assert inner["executionError"] == "" and inner["traceId"]
    assert isinstance(inner["executionTime"], int) and inner["executionCount"] == 1
    assert all(isinstance(x, str) for x in inner["result"])
    assert main_result(inner) == {"isMainResult": True, "text/plain": "42"}
    pids = [k["pid"] for k in fake.stats()["kernels"] if k["session"] == sid]
    assert len(pids) == 1

    release(url, sid)
    after = fake.stats()
    assert after["created"] == before["created"] + 1
    assert after["released"] == before["released"] + 1
    assert sid not in after["live_ids"]
    assert wait_dead(pids) == []


def test_state_persists_within_a_session_only(url):
    a, b = create(url), create(url)
    try:
        run(url, a, "counter = 1")
        err, inner = run(url, a, "counter += 1\ncounter")
        assert not err and main_result(inner)["text/plain"] == "2"
        assert inner["executionCount"] == 2
        err, inner = run(url, b, "counter")
        assert err and inner["executionError"] == "NameError: name 'counter' is not defined"
        assert "Traceback" in "".join(inner["stderr"])
    finally:
        release(url, a)
        release(url, b)


@pytest.mark.skipif(not HAVE_NODE, reason="node is not installed")
def test_javascript(url, sid):
    err, inner = run(url, sid, 'console.log("hello", 1+1); console.error("oops");\n'
                               'let n = 20; n * 2', "javascript")
    assert not err
    assert "".join(inner["stdout"]) == "hello 2\n" and "".join(inner["stderr"]) == "oops\n"
    assert main_result(inner) == {"isMainResult": True, "text/plain": "40"}
    err, inner = run(url, sid, "n + 1", "javascript")
    assert main_result(inner)["text/plain"] == "21"
    err, inner = run(url, sid, "({a: [1, 'x']})", "javascript")
    assert main_result(inner)["text/plain"] == "{ a: [ 1, 'x' ] }"
    err, inner = run(url, sid, 'throw new RangeError("bad")', "javascript")
    assert err and inner["executionError"] == "RangeError: bad"
    assert "RangeError: bad" in "".join(inner["stderr"])
    err, inner = run(url, sid, "new Promise(r => setTimeout(() => r('late'), 20))", "javascript")
    assert main_result(inner)["text/plain"] == "'late'"


def test_python_rich_results_and_errors(url, sid):
    code = ("class R:\n"
            "    def _repr_html_(self): return '<b>x</b>'\n"
            "    def _repr_png_(self): return b'\\x89PNG'\n"
            "    def __repr__(self): return 'R()'\n"
            "display(123)\n"
            "import sys; print('to err', file=sys.stderr)\n"
            "R()")
    err, inner = run(url, sid, code)
    assert not err
    items = [json.loads(x) for x in inner["result"]]
    assert items[0] == {"isMainResult": False, "text/plain": "123"}
    assert items[1] == {"isMainResult": True, "text/plain": "R()", "text/html": "<b>x</b>",
                        "image/png": "iVBORw=="}
    assert "".join(inner["stderr"]) == "to err\n"
    err, inner = run(url, sid, "import os\nos.system('echo from-a-child')\nNone")
    assert "".join(inner["stdout"]) == "from-a-child\n" and inner["result"] == []
    err, inner = run(url, sid, "def f(:\n  pass")
    assert err and inner["executionError"].startswith("SyntaxError: ")
    err, inner = run(url, sid, "try:\n    1/0\nexcept ZeroDivisionError:\n    print('caught')")
    assert not err and inner["stdout"] == ["caught\n"]


def test_space_encodings_and_unicode(url, sid):
    # '+' (Python/Go urlencode) and '%20' (curl_easy_escape) both mean a space.
    code = 'print("a b  c", "\u00e9\u4e2d")'
    for quote in (urllib.parse.quote_plus, urllib.parse.quote):
        path, _, headers = build("CallMcpTool")
        form = {"Authorization": "Bearer " + KEY, "SessionId": sid, "Name": "run_code",
                "Args": args(code), "AutoGenSession": "False", "Server": "wuying_codespace"}
        body = urllib.parse.urlencode(form, quote_via=quote).encode()
        req = urllib.request.Request(url + path, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            inner = json.loads(json.loads(r.read())["Data"]["content"][0]["text"])
        assert inner["stdout"] == ["a b  c \u00e9\u4e2d\n"]


def test_keep_alive(url, sid):
    host, port = url[len("http://"):].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        for i in range(3):
            path, body, headers = build("CallMcpTool", {
                "SessionId": sid, "Name": "run_code", "Args": args("%d * 2" % i),
                "AutoGenSession": "false", "Server": ""})
            conn.request("POST", path, body, headers)
            r = conn.getresponse()
            assert r.status == 200 and r.getheader("Content-Length")
            text = json.loads(r.read())["Data"]["content"][0]["text"]
            assert main_result(json.loads(text))["text/plain"] == str(i * 2)
        # An error reply keeps the connection usable too.
        path, body, headers = build("CallMcpTool", {"SessionId": "session-nope"})
        conn.request("POST", path, body, headers)
        r = conn.getresponse()
        assert r.status == 400 and json.loads(r.read())["Code"] == "InvalidMcpSession.NotFound"
        path, body, headers = build("GetSession", {"SessionId": sid})
        conn.request("POST", path, body, headers)
        assert conn.getresponse().status == 200
    finally:
        conn.close()


# ---------------------------------------------------------------------------
# Strictness
# ---------------------------------------------------------------------------

STRICT_CASES = [
    ("wrong Version", dict(query={"Version": "2017-01-01"}), 400, "InvalidVersion"),
    ("missing Version", dict(drop=("Version",)), 400, "MissingParameter"),
    ("wrong Format", dict(query={"Format": "xml"}), 400, "InvalidParameter"),
    ("missing Format", dict(drop=("Format",)), 400, "MissingParameter"),
    ("missing Timestamp", dict(drop=("Timestamp",)), 400, "MissingParameter"),
    ("bad Timestamp", dict(query={"Timestamp": "2026-01-29 09:21:48"}), 400,
     "InvalidTimeStamp.Format"),
    ("missing SignatureNonce", dict(drop=("SignatureNonce",)), 400, "MissingParameter"),
    ("empty SignatureNonce", dict(query={"SignatureNonce": ""}), 400, "MissingParameter"),
    ("missing x-acs-action", dict(drop=("x-acs-action",)), 400, "MissingParameter"),
    ("wrong x-acs-action", dict(headers={"x-acs-action": "CallMcpTool"}), 400,
     "InvalidParameter"),
    ("missing x-acs-version", dict(drop=("x-acs-version",)), 400, "MissingParameter"),
    ("wrong x-acs-version", dict(headers={"x-acs-version": "2025-05-07"}), 400,
     "InvalidParameter"),
    ("wrong Content-Type", dict(headers={"Content-Type": "application/json"}), 400,
     "InvalidParameter"),
    ("wrong key", dict(key="akm-wrong"), 400, "NOT_LOGIN"),
    ("no key", dict(key=None), 400, "NOT_LOGIN"),
    ("key in a header", dict(headers={"Authorization": "Bearer " + KEY}), 400,
     "InvalidParameter"),
    ("key in the query", dict(query={"Authorization": "Bearer " + KEY}), 400,
     "InvalidParameter"),
    ("unknown query parameter", dict(query={"AccessKeyId": "x"}), 400, "InvalidParameter"),
    ("GET", dict(method="GET"), 400, "UnsupportedHTTPMethod"),
]


@pytest.mark.parametrize("case", STRICT_CASES, ids=[c[0] for c in STRICT_CASES])
def test_strict_transport(url, sid, case):
    _, kw, status, code = case
    kw = dict(kw)
    method = kw.pop("method", "POST")
    r = post(url, "GetSession", {"SessionId": sid}, method=method, **kw)
    body = pop_error(r, status, code)
    if code == "NOT_LOGIN":
        assert body["Message"] == "You are not logged in or your login token has expired"
    # The same request done right is accepted.
    assert post(url, "GetSession", {"SessionId": sid}).status == 200


def test_strict_raw_requests(url, sid):
    host, port = url[len("http://"):].split(":")

    def raw(path, body, headers):
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            conn.request("POST", path, body, headers)
            r = conn.getresponse()
            return Reply(r.status, r.read())
        finally:
            conn.close()

    def fresh():
        return build("GetSession", {"SessionId": sid})

    path, body, headers = fresh()
    no_ct = {k: v for k, v in headers.items() if k != "Content-Type"}
    pop_error(raw(path, body, no_ct), 400, "MissingParameter")
    path, body, headers = fresh()
    pop_error(raw(path.replace("/?", "/x?"), body, headers), 400, "InvalidParameter")
    path, body, headers = fresh()
    pop_error(raw(path, body + b"&Bad=%zz", headers), 400, "InvalidParameter")
    path, body, headers = fresh()
    pop_error(raw(path, body.replace(b"Bearer+", b"Bearer "), headers), 400,
              "InvalidParameter")
    path, body, headers = fresh()
    pop_error(raw(path, body + b"&SessionId=" + sid.encode(), headers), 400,
              "InvalidParameter")
    # A nonce may be used once only.
    path, body, headers = fresh()
    assert raw(path, body, headers).status == 200
    pop_error(raw(path, body, headers), 400, "SignatureNonceUsed")


def test_unknown_action_and_parameters(url, sid):
    pop_error(post(url, "RunEverything", {}), 400, "InvalidAction.NotFound")
    pop_error(post(url, "GetSession", {"SessionID": sid}), 400, "InvalidParameter")
    pop_error(post(url, "GetSession", {}), 400, "MissingParameter")
    pop_error(post(url, "CreateMcpSession", {"ImageId": "code_latest", "Labels": "{bad"}),
              400, "InvalidParameter")


BAD_CALLS = [
    ("Args not JSON", {"Args": "{code: 1}"}, "InvalidParameter"),
    ("Args not an object", {"Args": "[1]"}, "InvalidParameter"),
    ("Args missing", {"Args": None}, "MissingParameter"),
    ("code not a string", {"Args": json.dumps({"code": 1, "language": "python",
                                               "timeout_s": 5})}, "InvalidParameter"),
    ("unknown language", {"Args": args("1", "ruby")}, "InvalidParameter"),
    ("timeout_s zero", {"Args": args("1", timeout_s=0)}, "InvalidParameter"),
    ("timeout_s float", {"Args": json.dumps({"code": "1", "language": "python",
                                             "timeout_s": 1.5})}, "InvalidParameter"),
    ("timeout_s missing", {"Args": json.dumps({"code": "1", "language": "python"})},
     "InvalidParameter"),
    ("extra argument", {"Args": json.dumps({"code": "1", "language": "python",
                                            "timeout_s": 5, "x": 1})}, "InvalidParameter"),
    ("AutoGenSession true", {"AutoGenSession": "true"}, "InvalidParameter"),
    ("AutoGenSession True", {"AutoGenSession": "True"}, "InvalidParameter"),
    ("wrong Server", {"Server": "wuying_shell"}, "InvalidParameter"),
    ("Name missing", {"Name": None}, "MissingParameter"),
    ("SessionId missing", {"SessionId": None}, "MissingParameter"),
]


@pytest.mark.parametrize("case", BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_strict_call_mcp_tool(url, sid, case):
    _, change, code = case
    form = {"SessionId": sid, "Name": "run_code", "Args": args("1"),
            "AutoGenSession": "false", "Server": ""}
    for k, v in change.items():
        if v is None:
            form.pop(k)
        else:
            form[k] = v
    pop_error(post(url, "CallMcpTool", form), 400, code)


def test_accepted_variants_of_optional_parameters(url, sid):
    # Go omits Server when empty and sends ExternalUserId/ImageId empty;
    # Python sends AutoGenSession=False.
    for extra in ({"Server": None}, {"ExternalUserId": "", "ImageId": ""},
                  {"AutoGenSession": "False"}, {"AutoGenSession": None}):
        form = {"SessionId": sid, "Name": "run_code", "Args": args("7"),
                "AutoGenSession": "false", "Server": ""}
        for k, v in extra.items():
            if v is None:
                form.pop(k)
            else:
                form[k] = v
        r = post(url, "CallMcpTool", form)
        assert r.status == 200, r.body


# ---------------------------------------------------------------------------
# Sessions
# ---------------------------------------------------------------------------

def test_released_session_is_gone(fake, url):
    sid = create(url)
    run(url, sid, "1")
    release(url, sid)
    pop_error(call(url, sid, "1"), 400, "InvalidMcpSession.NotFound")
    pop_error(post(url, "ReleaseMcpSession", {"SessionId": sid}), 400,
              "InvalidMcpSession.NotFound")
    pop_error(post(url, "GetSession", {"SessionId": sid}), 400, "InvalidMcpSession.NotFound")
    sid2 = create(url)
    assert admin(url, "expire", {"session_id": sid2}) == (200, {"ok": True, "released": True})
    pop_error(call(url, sid2, "1"), 400, "InvalidMcpSession.NotFound")


def test_non_code_image_has_no_run_code(url):
    r = post(url, "CreateMcpSession", {"ImageId": "linux_latest"})
    data = r.json["Data"]
    assert "run_code" not in [t["name"] for t in json.loads(data["ToolList"])]
    r = call(url, data["SessionId"], "1")
    assert r.status == 200
    assert r.json["Data"] == {"content": [{"type": "text", "text": "tool run_code not found"}],
                              "isError": True}
    release(url, data["SessionId"])


def test_delete_session_async_and_detail_polling(fake, url):
    sid = create(url)
    r = post(url, "GetSessionDetail", query={"SessionId": sid})
    assert r.status == 200 and r.json["Data"]["Status"] == "RUNNING"
    pop_error(post(url, "GetSessionDetail", {"SessionId": sid}), 400, "InvalidParameter")
    r = post(url, "DeleteSessionAsync", {"SessionId": sid})
    assert r.status == 200 and r.json["Success"] is True and "Data" not in r.json
    assert sid not in fake.stats()["live_ids"]
    pop_error(call(url, sid, "1"), 400, "InvalidMcpSession.NotFound")
    statuses = [post(url, "GetSessionDetail", query={"SessionId": sid}).json["Data"]["Status"]
                for _ in range(4)]
    assert statuses == ["DELETING", "DELETING", "FINISH", "FINISH"]
    pop_error(post(url, "GetSessionDetail", query={"SessionId": "session-unknown"}), 400,
              "InvalidMcpSession.NotFound")


def test_max_sessions():
    with fake_agentbay.FakeAgentBay(KEY, max_sessions=1) as f:
        a = create(f.url)
        r = post(f.url, "CreateMcpSession", {"ImageId": "code_latest"})
        assert r.status == 200
        env = r.json
        assert env["Success"] is False and env["Code"] == "QuotaExceeded" and "Data" not in env
        f.variant(quota_mode="http400")
        pop_error(post(f.url, "CreateMcpSession", {"ImageId": "code_latest"}), 400,
                  "QuotaExceeded")
        release(f.url, a)
        release(f.url, create(f.url))
        assert f.stats()["created"] == 2


def test_stats_and_request_log(fake, url, sid):
    run(url, sid, "1")
    st = admin(url, "stats")[1]
    for k in ("created", "released", "live", "live_ids", "calls", "requests"):
        assert k in st
    assert st["live"] == len(st["live_ids"]) and sid in st["live_ids"]
    assert st["calls"]["CallMcpTool"] >= 1
    assert len(st["requests"]) <= 50
    last = st["requests"][-1]
    assert last["action"] == "CallMcpTool"
    assert last["headers"]["x-acs-action"] == "CallMcpTool"
    assert all(k == k.lower() for k in last["headers"])
    assert last["form"]["Authorization"] == "Bearer " + KEY
    assert json.loads(last["form"]["Args"])["code"] == "1"
    assert set(last["query"]) == {"Action", "Format", "Version", "Timestamp", "SignatureNonce"}
    # The key shows up in the Authorization form field only.
    for r in st["requests"]:
        blob = json.dumps([r["query"], r["headers"],
                           {k: v for k, v in r["form"].items() if k != "Authorization"}])
        if r["status"] == 200:
            assert KEY not in blob


def test_admin_validation(url):
    assert admin(url, "fault", {"action": "*", "fault": "nope"})[0] == 400
    assert admin(url, "fault", {"action": "*", "fault": "http500", "count": 0})[0] == 400
    assert admin(url, "variant", {"nope": True})[0] == 400
    assert admin(url, "variant", {"timeout_mode": "later"})[0] == 400
    assert admin(url, "variant", {"payload_limit": "big"})[0] == 400
    status, v = admin(url, "variant", {"snake_case": True})
    assert status == 200 and v["snake_case"] is True
    assert admin(url, "fault", {"action": "GetSession", "fault": "http500", "count": 3})[0] == 200
    assert admin(url, "stats")[1]["faults"][0]["count"] == 3
    assert admin(url, "reset", {}) == (200, {"ok": True})
    st = admin(url, "stats")[1]
    assert st["faults"] == [] and st["variants"]["snake_case"] is False


# ---------------------------------------------------------------------------
# Faults
# ---------------------------------------------------------------------------

def _get_session(url, sid, timeout=30):
    """GetSession; returns a Reply or the exception raised."""
    try:
        path, body, headers = build("GetSession", {"SessionId": sid})
        req = urllib.request.Request(url + path, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return Reply(r.status, r.read())
        except urllib.error.HTTPError as e:
            return Reply(e.code, e.read())
    except (OSError, http.client.HTTPException) as e:
        return e


def _check_fault(name, got, sid, fake):
    if name in ("http500", "http503", "throttling", "not_login", "session_gone"):
        status, code = {"http500": (500, "InternalError"),
                        "http503": (503, "ServiceUnavailable"),
                        "throttling": (400, "Throttling.User"),
                        "not_login": (400, "NOT_LOGIN"),
                        "session_gone": (400, "InvalidMcpSession.NotFound")}[name]
        body = pop_error(got, status, code)
        if name == "throttling":
            assert body["Message"] == "Request was denied due to user flow control."
        if name == "session_gone":
            assert sid not in fake.stats()["live_ids"]
    elif name == "close":
        assert isinstance(got, (http.client.RemoteDisconnected, ConnectionError)), got
    elif name == "garbage":
        assert got.status == 200
        with pytest.raises(ValueError):
            json.loads(got.body)
    elif name == "truncated":
        assert isinstance(got, http.client.IncompleteRead), got
    elif name == "huge":
        assert got.status == 200 and len(got.body) == 64 << 20
        data = got.json["Data"]
        assert len(json.loads(data["content"][0]["text"])["stdout"][0]) > 60 << 20
    elif name == "success_false":
        env = got.json
        assert got.status == 200 and env["Success"] is False
        assert env["Code"] == "InternalError" and env["Message"] == "internal error"
    elif name == "tool_not_found":
        data = got.json["Data"]
        assert data["isError"] is True and data["content"][0]["text"] == "tool run_code not found"
    elif name == "empty_data":
        assert got.status == 200 and got.json["Success"] is True and "Data" not in got.json
    else:
        raise AssertionError(name)


@pytest.mark.parametrize("name", [f for f in fake_agentbay.FAULTS if f != "stall"])
def test_fault_fires_exactly_count_times(fake, url, name):
    count = 1 if name == "huge" else 2
    sids = [create(url) for _ in range(count + 1)]
    # A fault for another action does not fire; invalid requests do not use it up.
    assert admin(url, "fault", {"action": "GetSession", "fault": name, "count": count})[0] == 200
    assert post(url, "GetSessionDetail", query={"SessionId": sids[0]}).status == 200
    pop_error(post(url, "GetSession", {"SessionId": sids[0]}, key="wrong"), 400, "NOT_LOGIN")
    for i in range(count):
        _check_fault(name, _get_session(url, sids[i if name == "session_gone" else 0]),
                     sids[i], fake)
    ok = _get_session(url, sids[-1])
    assert isinstance(ok, Reply) and ok.status == 200, ok
    assert ok.json["Data"]["SessionId"] == sids[-1]
    assert fake.stats()["faults"] == []
    for s in sids:
        post(url, "ReleaseMcpSession", {"SessionId": s})


def test_fault_wildcard_and_stall(url, sid):
    admin(url, "fault", {"action": "*", "fault": "stall", "count": 1, "seconds": 0.6})
    t0 = time.monotonic()
    err, inner = run(url, sid, "5")
    assert time.monotonic() - t0 >= 0.6 and main_result(inner)["text/plain"] == "5"
    t0 = time.monotonic()
    assert _get_session(url, sid).status == 200
    assert time.monotonic() - t0 < 0.5
    admin(url, "fault", {"action": "*", "fault": "http503", "count": 1})
    pop_error(post(url, "ListMcpTools", {"ImageId": "code_latest"}), 503, "ServiceUnavailable")
    assert post(url, "ListMcpTools", {"ImageId": "code_latest"}).status == 200


def test_fault_on_call_does_not_run_the_code(url, sid):
    run(url, sid, "n = 0")
    admin(url, "fault", {"action": "CallMcpTool", "fault": "close"})
    assert isinstance(_call_exc(url, sid, "n += 1"), (http.client.RemoteDisconnected,
                                                      ConnectionError))
    admin(url, "fault", {"action": "CallMcpTool", "fault": "tool_not_found"})
    r = call(url, sid, "n += 1")
    assert r.json["Data"]["content"][0]["text"] == "tool run_code not found"
    err, inner = run(url, sid, "n")
    assert main_result(inner)["text/plain"] == "0"


def _call_exc(url, sid, code):
    try:
        return call(url, sid, code)
    except (OSError, http.client.HTTPException) as e:
        return e


# ---------------------------------------------------------------------------
# Variants
# ---------------------------------------------------------------------------

OK_CODE = "print('out')\ndisplay(1)\n42"
BAD_CODE = "print('before')\nraise ValueError('boom')"


def _data(url, sid, code):
    r = call(url, sid, code)
    assert r.status == 200, r.body
    return r.json["Data"]


def test_variant_default_shape(url, sid):
    data = _data(url, sid, OK_CODE)
    assert isinstance(data, dict) and data["isError"] is False
    inner = json.loads(data["content"][0]["text"])
    assert inner["result"] == ['{"isMainResult":false,"text/plain":"1"}',
                               '{"isMainResult":true,"text/plain":"42"}']
    data = _data(url, sid, BAD_CODE)
    inner = json.loads(data["content"][0]["text"])
    assert data["isError"] is True and inner["executionError"] == "ValueError: boom"
    assert inner["stdout"] == ["before\n"] and "Traceback" in "".join(inner["stderr"])


def test_variant_data_as_string(url, sid):
    admin(url, "variant", {"data_as_string": True})
    data = _data(url, sid, OK_CODE)
    assert isinstance(data, str)
    data = json.loads(data)
    assert data["isError"] is False and "42" in data["content"][0]["text"]


def test_variant_result_encodings(url, sid):
    admin(url, "variant", {"double_encode_results": True})
    inner = json.loads(_data(url, sid, OK_CODE)["content"][0]["text"])
    assert all(isinstance(json.loads(x), str) for x in inner["result"])
    assert json.loads(json.loads(inner["result"][1]))["text/plain"] == "42"

    admin(url, "reset", {})
    admin(url, "variant", {"results_as_objects": True})
    inner = json.loads(_data(url, sid, OK_CODE)["content"][0]["text"])
    assert inner["result"][1] == {"isMainResult": True, "text/plain": "42"}

    admin(url, "reset", {})
    admin(url, "variant", {"nested_results": True})
    inner = json.loads(_data(url, sid, OK_CODE)["content"][0]["text"])
    assert len(inner["result"]) == 1 and isinstance(inner["result"][0], list)
    assert json.loads(inner["result"][0][1])["text/plain"] == "42"


def test_variant_error_reporting(url, sid):
    admin(url, "variant", {"iserror_empty_execution_error": True})
    data = _data(url, sid, BAD_CODE)
    inner = json.loads(data["content"][0]["text"])
    assert data["isError"] is True and inner["executionError"] == ""
    assert "ValueError: boom" in "".join(inner["stderr"])

    admin(url, "reset", {})
    admin(url, "variant", {"error_without_iserror": True})
    data = _data(url, sid, BAD_CODE)
    inner = json.loads(data["content"][0]["text"])
    assert data["isError"] is False and inner["executionError"] == ""
    assert "ValueError: boom" in "".join(inner["stderr"])


def test_variant_plain_text(url, sid):
    admin(url, "variant", {"plain_text": True})
    data = _data(url, sid, OK_CODE)
    assert data["content"][0]["text"] == "out\n" and data["isError"] is False
    data = _data(url, sid, BAD_CODE)
    assert data["isError"] is True and data["content"][0]["text"].startswith("before\n")
    assert "ValueError: boom" in data["content"][0]["text"]


def test_variant_legacy_rich(url, sid):
    admin(url, "variant", {"legacy_rich": True})
    inner = json.loads(_data(url, sid, OK_CODE)["content"][0]["text"])
    assert inner["logs"] == {"stdout": ["out\n"], "stderr": []}
    assert inner["results"][1] == {"is_main_result": True, "text": "42"}
    assert "error" not in inner and inner["isError"] is False
    assert isinstance(inner["execution_count"], int)
    inner = json.loads(_data(url, sid, BAD_CODE)["content"][0]["text"])
    assert inner["error"]["name"] == "ValueError" and inner["error"]["value"] == "boom"
    assert "Traceback" in inner["error"]["traceback"] and inner["isError"] is True


def test_variant_snake_case(url, sid):
    admin(url, "variant", {"snake_case": True})
    inner = json.loads(_data(url, sid, OK_CODE)["content"][0]["text"])
    assert "execution_time" in inner and "execution_count" in inner
    assert "executionTime" not in inner and "executionCount" not in inner


def test_payload_limit(url, sid):
    big = "x = '%s'\nlen(x)" % ("a" * 70000)
    pop_error(call(url, sid, big), 400, "InvalidParameter.ArgsTooLarge")
    err, inner = run(url, sid, "x = '%s'\nlen(x)" % ("a" * 60000))
    assert main_result(inner)["text/plain"] == "60000"
    admin(url, "variant", {"payload_limit": 100})
    pop_error(call(url, sid, "#" * 100), 400, "InvalidParameter.ArgsTooLarge")
    assert call(url, sid, "1").status == 200


# ---------------------------------------------------------------------------
# Timeouts
# ---------------------------------------------------------------------------

def _kernel_pid(fake, sid, language="python"):
    for k in fake.stats()["kernels"]:
        if k["session"] == sid and k["language"] == language:
            return k["pid"]
    return None


def test_timeout_mode_error(fake, url, sid):
    run(url, sid, "state = 1")
    pid = _kernel_pid(fake, sid)
    t0 = time.monotonic()
    err, inner = run(url, sid, "import time\nprint('start')\ntime.sleep(30)", timeout_s=1)
    assert 1.0 <= time.monotonic() - t0 < 5
    assert err is True
    assert inner["executionError"] == "TimeoutError: code execution timed out after 1 seconds"
    assert inner["stdout"] == ["start\n"]
    assert wait_dead([pid]) == []
    err, inner = run(url, sid, "state")            # a fresh kernel
    assert err and "NameError" in inner["executionError"]


@pytest.mark.skipif(not HAVE_NODE, reason="node is not installed")
def test_timeout_javascript(fake, url, sid):
    run(url, sid, "var kept = 1", "javascript")
    err, inner = run(url, sid, "while (true) {}", "javascript", timeout_s=1)
    assert err and inner["executionError"].startswith("TimeoutError")
    err, inner = run(url, sid, "typeof kept", "javascript")
    assert main_result(inner)["text/plain"] == "'undefined'"


def test_timeout_mode_http504(url, sid):
    admin(url, "variant", {"timeout_mode": "http504"})
    pop_error(call(url, sid, "while True: pass", timeout_s=1), 504, "GatewayTimeout")
    err, inner = run(url, sid, "3")
    assert main_result(inner)["text/plain"] == "3"


def test_timeout_mode_stall(fake, url, sid):
    admin(url, "variant", {"timeout_mode": "stall"})
    run(url, sid, "kept = 1")
    pid = _kernel_pid(fake, sid)
    t0 = time.monotonic()
    with pytest.raises((TimeoutError, OSError)):
        call(url, sid, "while True: pass", timeout_s=1, timeout=2.5)
    assert time.monotonic() - t0 >= 2.4
    assert wait_dead([pid]) == []
    # The fake noticed that the client gave up and answered nothing.
    end = time.monotonic() + 3
    while time.monotonic() < end:
        calls = [r for r in fake.stats()["requests"] if r["action"] == "CallMcpTool"]
        if calls[-1]["status"] == "abandoned":
            break
        time.sleep(0.05)
    assert calls[-1]["status"] == "abandoned"
    err, inner = run(url, sid, "'kept' in globals()")
    assert main_result(inner)["text/plain"] == "False"


# ---------------------------------------------------------------------------
# Process hygiene and the CLI
# ---------------------------------------------------------------------------

def test_stop_kills_kernels():
    f = fake_agentbay.FakeAgentBay(KEY)
    url = f.start()
    sid = create(url)
    run(url, sid, "1")
    if HAVE_NODE:
        run(url, sid, "1", "javascript")
    pids = [k["pid"] for k in f.stats()["kernels"]]
    assert pids and all(alive(p) for p in pids)
    f.stop()
    assert wait_dead(pids) == []
    with pytest.raises(OSError):
        urllib.request.urlopen(url + "/_admin/stats", timeout=2)


def test_cli(tmp_path):
    port_file = tmp_path / "port"
    script = os.path.join(TESTS_DIR, "fake_agentbay.py")
    proc = subprocess.Popen([sys.executable, script, "--key", KEY, "--port", "0",
                             "--port-file", str(port_file), "--max-sessions", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:"), line
        url = line.split()[-1]
        assert port_file.read_text().strip() == url.rsplit(":", 1)[1]
        sid = create(url)
        assert post(url, "CreateMcpSession", {"ImageId": "code_latest"}).json["Success"] is False
        err, inner = run(url, sid, "print('cli')")
        assert inner["stdout"] == ["cli\n"]
        with urllib.request.urlopen(url + "/_admin/stats", timeout=5) as r:
            pids = [k["pid"] for k in json.loads(r.read())["kernels"]]
        assert len(pids) == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert proc.stdout.read() == ""
        assert wait_dead(pids) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()

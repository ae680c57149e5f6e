#!/usr/bin/python3
"""A fake AgentBay OpenAPI service for the agentbayfs tests.

It speaks the wire protocol of Alibaba Cloud AgentBay (product "wuyingai",
API version 2025-05-06, RPC style, anonymous auth with the API key in the
"Authorization" form field) over plain HTTP/1.1 on 127.0.0.1, is strict about
what the official SDKs send, and really runs the code given to run_code: every
session gets its own long-lived Python and node "kernels" (started lazily) so
that state persists between calls of one session, like Jupyter.

CLI:
    python3 tests/fake_agentbay.py --key KEY [--port 0] [--port-file FILE]
                                   [--max-sessions N] [--verbose]
  prints exactly one line "listening on http://127.0.0.1:PORT" to stdout when
  ready and exits 0 on SIGTERM/SIGINT (killing its kernels).

Module:
    fake = FakeAgentBay("akm-test", max_sessions=None)
    url = fake.start()          # serves in a background thread
    fake.fault("CallMcpTool", "http503", count=2)
    fake.variant(data_as_string=True, timeout_mode="http504")
    fake.reset(); fake.expire(session_id); fake.stats()
    fake.stop()

Validation of every POST / request, in this order (each failure is an HTTP
400 POP error body {RequestId, HostId, Code, Message, Recommend}):
  method POST (else UnsupportedHTTPMethod); path "/" (InvalidParameter); the
  query string well formed (InvalidParameter); Action, Version, Format,
  Timestamp, SignatureNonce present and non-empty (MissingParameter); Version
  2025-05-06 (InvalidVersion); Format json (InvalidParameter); Timestamp
  YYYY-MM-DDThh:mm:ssZ (InvalidTimeStamp.Format); the nonce not seen before
  (SignatureNonceUsed); Host, x-acs-action and x-acs-version headers present
  (MissingParameter) and equal to Action and Version (InvalidParameter);
  Content-Type application/x-www-form-urlencoded (missing: MissingParameter,
  other: InvalidParameter); the body a strict form: no raw spaces, controls or
  non-ASCII bytes, no bad %-escapes, no duplicate keys (InvalidParameter); no
  HTTP Authorization header and no Authorization in the query
  (InvalidParameter); form Authorization exactly "Bearer KEY" (NOT_LOGIN);
  a known Action (InvalidAction.NotFound); no parameter the SDKs never send for
  that action (InvalidParameter).  Then action specific checks follow.
  Requests without Content-Length get HTTP 411, chunked bodies 400 and bodies
  over 64 MiB 413 (all closing the connection).

Actions: CreateMcpSession, CallMcpTool (run_code only), ReleaseMcpSession,
DeleteSessionAsync (SessionId in the body), GetSessionDetail (SessionId in
the query; a live session is RUNNING, a deleted one DELETING for 2 polls, then
FINISH for ever; unknown ones InvalidMcpSession.NotFound), GetSession and
ListMcpTools.  With max_sessions, CreateMcpSession beyond that many live
sessions answers HTTP 200 {Success: false, Code: "QuotaExceeded",
HttpStatusCode: 400} (variant quota_mode="http400": an HTTP 400 POP error
with the same Code).  A session deleted with DeleteSessionAsync stops counting
as live (and its kernels die) at once.

run_code: Args must be a JSON object with exactly code (string), language
("python" or "javascript"; anything else is InvalidParameter, including the
SDK's r/java) and timeout_s (JSON integer >= 1).  Name other than run_code or
a session whose image is not code_latest: Data {"content": [{"type": "text",
"text": "tool NAME not found"}], "isError": true}.  Python runs in
"/usr/bin/python3 -I -u", JavaScript in a node vm context; both in a
per-session scratch directory.  executionError is "Name: value" ("Error:
<inspect>" when JS throws a non-Error); a run longer than timeout_s kills the
kernel (its state is lost) and reports "TimeoutError: code execution timed
out after N seconds" with the output printed so far; a kernel that dies
reports "KernelDied: ...".  Output beyond 16 MiB per stream is dropped.

Faults (fault(action, name, count=1, seconds=1.0); action "*" matches any)
are consumed only by requests that passed the validation above, in FIFO
order, and replace the normal processing (the code is not run), except
"stall", which sleeps and then answers normally: http500, http503,
throttling, not_login, session_gone, close, stall, garbage (HTML body),
truncated (half the body, then close), huge (a valid 64 MiB envelope whose
stdout is "AAAA..."), success_false, tool_not_found, empty_data.

Variants (variant(**switches); persistent until reset()): data_as_string,
double_encode_results, results_as_objects, nested_results,
iserror_empty_execution_error, error_without_iserror, plain_text,
legacy_rich, snake_case (booleans); timeout_mode ("error" | "http504" |
"stall"); payload_limit (int, default 65536; None restores it); quota_mode
("envelope" | "http400").  Result items are encoded as objects when
results_as_objects, else as JSON strings; double_encode_results then
JSON-encodes each item once more; nested_results wraps all items in one
array.  With plain_text an error appends stderr to the text.  With
legacy_rich execution_time is in seconds (float); elsewhere it is in ms.
In timeout_mode "stall" the reply is held until the client closes the
connection (then nothing is sent), at most 120 s (then the "error" reply).
In the error variants a timeout message goes to stderr since
executionError is empty.

Admin endpoints (no auth, JSON in and out):
  GET  /_admin/stats    -> stats(): created, released, live, live_ids, calls
                           {Action: n}, requests (last 50: action, method,
                           path, query, headers with lowercased keys, form,
                           status), kernels [{session, language, pid}],
                           faults, variants
  GET  /_admin/variant  -> the current variants
  POST /_admin/fault    {"action", "fault", "count", "seconds"}
  POST /_admin/variant  {switch: value, ...} -> all variants
  POST /_admin/reset    clears faults and variants (not sessions or counters)
  POST /_admin/expire   {"session_id"} -> {"ok", "released"}
Bad admin input gets HTTP 400 {"error": "..."}.

Kernels are forked from one long-lived thread with PR_SET_PDEATHSIG, so they
die with the fake even when it is killed with SIGKILL.
"""

import argparse
import collections
import json
import os
import re
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

API_VERSION = "2025-05-06"
HOST_ID = "wuyingai.cn-shanghai.aliyuncs.com"
CODE_IMAGE = "code_latest"
DEFAULT_IMAGE = "linux_latest"
CODE_SERVER = "wuying_codespace"
NOT_LOGIN_MESSAGE = "You are not logged in or your login token has expired"
THROTTLING_MESSAGE = "Request was denied due to user flow control."

MAX_BODY = 64 << 20          # largest request body accepted
OUTPUT_CAP = 16 << 20        # per stream and call; the rest is dropped
HUGE_SIZE = 64 << 20         # size of the "huge" fault body
STALL_CAP = 120.0            # timeout_mode=stall gives up after this
REQUEST_LOG = 50
DETAIL_DELETING_POLLS = 2    # GetSessionDetail says DELETING this many times

TIMESTAMP_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
BAD_ESCAPE_RE = re.compile(rb"%(?![0-9A-Fa-f]{2})")
FORM_CHARS_RE = re.compile(rb"^[\x21-\x7e]*$")

PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable

FAULTS = ("http500", "http503", "throttling", "not_login", "session_gone", "close",
          "stall", "garbage", "truncated", "huge", "success_false", "tool_not_found",
          "empty_data")

BOOL_VARIANTS = ("data_as_string", "double_encode_results", "results_as_objects",
                 "nested_results", "iserror_empty_execution_error",
                 "error_without_iserror", "plain_text", "legacy_rich", "snake_case")
TIMEOUT_MODES = ("error", "http504", "stall")
QUOTA_MODES = ("envelope", "http400")
DEFAULT_VARIANTS = dict({k: False for k in BOOL_VARIANTS}, timeout_mode="error",
                        payload_limit=65536, quota_mode="envelope")

COMMON_QUERY = {"Action", "Format", "Version", "Timestamp", "SignatureNonce"}
# Parameters the SDKs may send, per action (besides Authorization).
ACTIONS = {
    "CreateMcpSession": {"form": {"ImageId", "SdkStats", "Labels", "LoginRegionId",
                                  "McpPolicyId", "PersistenceDataList", "EnableRecord",
                                  "NetworkId", "ExtraConfigs", "ContextId", "SessionId",
                                  "VpcResource", "ExternalUserId"}},
    "CallMcpTool": {"form": {"SessionId", "Name", "Args", "AutoGenSession", "Server",
                             "ExternalUserId", "ImageId", "Tool"}},
    "ReleaseMcpSession": {"form": {"SessionId"}},
    "DeleteSessionAsync": {"form": {"SessionId"}},
    "GetSessionDetail": {"form": set(), "query": {"SessionId"}},
    "GetSession": {"form": {"SessionId"}},
    "ListMcpTools": {"form": {"ImageId"}},
}

LEGACY_FIELDS = {"text/plain": "text", "text/html": "html", "text/markdown": "markdown",
                 "image/png": "png", "image/jpeg": "jpeg", "image/svg+xml": "svg",
                 "application/json": "json", "text/latex": "latex",
                 "application/vnd.vegalite.v4+json": "chart",
                 "application/vnd.vegalite.v5+json": "chart",
                 "application/vnd.vega.v5+json": "chart"}


def _compact(value):
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _request_id():
    return str(uuid.uuid4()).upper()


def _tool_list(image):
    if image == CODE_IMAGE:
        tools = [{"name": "run_code", "server": CODE_SERVER, "tool": "run_code",
                  "description": "Execute code (python or javascript) in the session.",
                  "inputSchema": {"type": "object", "properties": {
                      "code": {"type": "string"}, "language": {"type": "string"},
                      "timeout_s": {"type": "integer"}},
                      "required": ["code", "language"]}}]
    else:
        tools = [{"name": "shell", "server": "wuying_shell", "tool": "shell",
                  "description": "Run a shell command.",
                  "inputSchema": {"type": "object"}}]
    return json.dumps(tools)


# ---------------------------------------------------------------------------
# Kernel drivers (run in the child processes)
# ---------------------------------------------------------------------------

# Requests: one JSON line {"id": n, "code": "..."} on stdin.
# Replies: JSON lines on the fd named by $FAKE_KERNEL_FD:
#   {"ev": "stdout"|"stderr", "id": n, "text": "..."}
#   {"ev": "display", "id": n, "data": {mime bundle}}
#   {"ev": "done", "id": n, "result": {mime bundle}|null,
#    "error": {"name", "value", "traceback"}|null}
PY_DRIVER = r'''
import ast, asyncio, base64, builtins, inspect, io, json, linecache, os, sys
import tempfile, traceback

_req = os.fdopen(os.dup(0), "rb")
_null = os.open(os.devnull, os.O_RDWR)
os.dup2(_null, 0)
_rep = os.fdopen(int(os.environ.pop("FAKE_KERNEL_FD")), "wb")
_fd1 = os.dup(1)
_fd2 = os.dup(2)
_cur = [0]


def _send(obj):
    _rep.write(json.dumps(obj).encode("utf-8") + b"\n")
    _rep.flush()


class _Bytes:
    def __init__(self, s):
        self._s = s

    def write(self, b):
        self._s.write(bytes(b).decode("utf-8", "replace"))
        return len(b)

    def flush(self):
        self._s.flush()


class _Stream(io.TextIOBase):
    def __init__(self, name, fd):
        self._name = name
        self._fd = fd
        self._buf = ""
        self.buffer = _Bytes(self)

    encoding = "utf-8"
    errors = "strict"

    @property
    def name(self):
        return "<%s>" % self._name

    def writable(self):
        return True

    def isatty(self):
        return False

    def fileno(self):
        return self._fd

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError("write() argument must be str, not %s" % type(s).__name__)
        self._buf += s
        cut = self._buf.rfind("\n") + 1
        if cut == 0 and len(self._buf) > 8192:
            cut = len(self._buf)
        if cut:
            text, self._buf = self._buf[:cut], self._buf[cut:]
            _send({"ev": self._name, "id": _cur[0], "text": text})
        return len(s)

    def flush(self):
        if self._buf:
            text, self._buf = self._buf, ""
            _send({"ev": self._name, "id": _cur[0], "text": text})


_out = _Stream("stdout", 1)
_err = _Stream("stderr", 2)

_REPRS = (("_repr_html_", "text/html", "text"), ("_repr_markdown_", "text/markdown", "text"),
          ("_repr_svg_", "image/svg+xml", "text"), ("_repr_png_", "image/png", "b64"),
          ("_repr_jpeg_", "image/jpeg", "b64"), ("_repr_latex_", "text/latex", "text"),
          ("_repr_json_", "application/json", "json"))


def _bundle(value, main):
    data = {"isMainResult": main}
    try:
        data["text/plain"] = repr(value)
    except BaseException as e:
        data["text/plain"] = "<repr failed: %s>" % type(e).__name__
    if isinstance(value, type):
        return data
    for meth, mime, kind in _REPRS:
        try:
            f = getattr(value, meth, None)
            if not callable(f):
                continue
            r = f()
            if isinstance(r, tuple):
                r = r[0]
            if r is None:
                continue
            if kind == "b64":
                if isinstance(r, (bytes, bytearray)):
                    r = base64.b64encode(bytes(r)).decode("ascii")
                data[mime] = str(r)
            elif kind == "json":
                json.dumps(r)
                data[mime] = r
            else:
                data[mime] = str(r)
        except BaseException:
            continue
    try:
        f = getattr(value, "_repr_mimebundle_", None)
        if callable(f):
            r = f()
            if isinstance(r, tuple):
                r = r[0]
            if isinstance(r, dict):
                for k, v in r.items():
                    if isinstance(k, str) and "/" in k:
                        json.dumps(v)
                        data[k] = v
    except BaseException:
        pass
    return data


def display(*objs, **kwargs):
    for o in objs:
        _send({"ev": "display", "id": _cur[0], "data": _bundle(o, False)})


builtins.display = display
G = {"__name__": "__main__", "__builtins__": builtins}


def _await(co, value):
    if co.co_flags & inspect.CO_COROUTINE:
        loop = asyncio.new_event_loop()
        try:
            return loop.run_until_complete(value)
        finally:
            loop.close()
    return value


def _error(e):
    tb = e.__traceback__
    while tb is not None and not tb.tb_frame.f_code.co_filename.startswith("<cell-"):
        tb = tb.tb_next
    if tb is None:
        text = "".join(traceback.format_exception_only(type(e), e))
    else:
        text = "".join(traceback.format_exception(type(e), e, tb))
    try:
        value = str(e)
    except BaseException:
        value = "<unprintable>"
    _err.write(text)
    return {"name": type(e).__name__, "value": value, "traceback": text}


def _run(code, n):
    fn = "<cell-%d>" % n
    linecache.cache[fn] = (len(code), None, code.splitlines(True), fn)
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    try:
        tree = ast.parse(code, fn, "exec")
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = ast.Expression(tree.body.pop().value)
        co = compile(tree, fn, "exec", flags=flags)
        _await(co, eval(co, G))
        if last is not None:
            co = compile(last, fn, "eval", flags=flags)
            value = _await(co, eval(co, G))
            if value is not None:
                G["_"] = value
                return _bundle(value, True), None
        return None, None
    except BaseException as e:
        return None, _error(e)


def _main():
    while True:
        line = _req.readline()
        if not line:
            break
        try:
            req = json.loads(line)
        except ValueError:
            continue
        _cur[0] = req["id"]
        t1 = tempfile.TemporaryFile()
        t2 = tempfile.TemporaryFile()
        sys.stdout, sys.stderr = _out, _err
        os.dup2(t1.fileno(), 1)
        os.dup2(t2.fileno(), 2)
        try:
            result, error = _run(req["code"], req["id"])
        finally:
            os.dup2(_fd1, 1)
            os.dup2(_fd2, 2)
        sys.stdout, sys.stderr = _out, _err
        for t, s in ((t1, _out), (t2, _err)):
            t.seek(0)
            data = t.read()
            t.close()
            if data:
                s.flush()
                s.write(data.decode("utf-8", "replace"))
        _out.flush()
        _err.flush()
        _send({"ev": "done", "id": req["id"], "result": result, "error": error})
    os._exit(0)


_main()
'''

JS_DRIVER = r'''
'use strict';
const vm = require('vm');
const util = require('util');
const fs = require('fs');
const path = require('path');
const { createRequire } = require('module');
const REPLY = Number(process.env.FAKE_KERNEL_FD);
delete process.env.FAKE_KERNEL_FD;
let cur = 0;

function send(obj) {
  const b = Buffer.from(JSON.stringify(obj) + '\n', 'utf8');
  let off = 0;
  while (off < b.length) {
    try { off += fs.writeSync(REPLY, b, off, b.length - off); }
    catch (e) { if (e.code !== 'EAGAIN') throw e; }
  }
}

const bufs = { stdout: '', stderr: '' };
function emit(name, text) {
  bufs[name] += text;
  let cut = bufs[name].lastIndexOf('\n') + 1;
  if (cut === 0 && bufs[name].length > 8192) cut = bufs[name].length;
  if (cut > 0) {
    send({ ev: name, id: cur, text: bufs[name].slice(0, cut) });
    bufs[name] = bufs[name].slice(cut);
  }
}
function flush() {
  for (const n of ['stdout', 'stderr']) {
    if (bufs[n]) { send({ ev: n, id: cur, text: bufs[n] }); bufs[n] = ''; }
  }
}
function sink(name) {
  return {
    write(chunk, enc, cb) {
      emit(name, typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
      if (typeof enc === 'function') enc(); else if (typeof cb === 'function') cb();
      return true;
    },
  };
}
const con = new console.Console({ stdout: sink('stdout'), stderr: sink('stderr'),
                                  ignoreErrors: false, colorMode: false });
process.stdout.write = sink('stdout').write;
process.stderr.write = sink('stderr').write;

const sandbox = {
  console: con, process, Buffer, URL, URLSearchParams, TextEncoder, TextDecoder,
  setTimeout, clearTimeout, setInterval, clearInterval, setImmediate, clearImmediate,
  queueMicrotask, structuredClone, AbortController, performance,
  require: createRequire(path.join(process.cwd(), '__cell__.js')),
};
if (typeof fetch === 'function') sandbox.fetch = fetch;
const ctx = vm.createContext(sandbox);
vm.runInContext('globalThis.global = globalThis;', ctx);

function cleanStack(stack) {
  return stack.split('\n')
    .filter((l) => !/^\s+at .*(node:|\[eval\])/.test(l))
    .join('\n');
}

async function run(req) {
  cur = req.id;
  let value, err, failed = false;
  try {
    const script = new vm.Script(req.code, { filename: 'cell-' + req.id + '.js' });
    value = script.runInContext(ctx, { displayErrors: false });
    if (value !== null && (typeof value === 'object' || typeof value === 'function') &&
        typeof value.then === 'function') {
      value = await value;
    }
  } catch (e) {
    failed = true;
    err = e;
  }
  await new Promise((r) => setImmediate(r));
  let result = null, error = null;
  if (failed) {
    let name = 'Error', message, stack;
    if (err !== null && typeof err === 'object' && 'message' in err) {
      name = String(err.name || 'Error');
      message = String(err.message);
      stack = typeof err.stack === 'string' ? cleanStack(err.stack) : name + ': ' + message;
    } else {
      message = util.inspect(err);
      stack = 'Uncaught ' + message;
    }
    emit('stderr', stack + '\n');
    error = { name, value: message, traceback: stack };
  } else if (value !== undefined) {
    result = { isMainResult: true, 'text/plain': util.inspect(value) };
  }
  flush();
  send({ ev: 'done', id: req.id, result, error });
}

const describe = (e) => (e && e.stack) || String(e);
process.on('uncaughtException', (e) => emit('stderr', 'Uncaught ' + describe(e) + '\n'));
process.on('unhandledRejection', (e) => emit('stderr', 'Unhandled: ' + describe(e) + '\n'));

const queue = [];
let busy = false;
async function pump() {
  if (busy) return;
  busy = true;
  while (queue.length) {
    let req;
    try { req = JSON.parse(queue.shift()); } catch (e) { continue; }
    try { await run(req); } catch (e) {
      send({ ev: 'done', id: req.id, result: null,
             error: { name: 'KernelError', value: String(e), traceback: String(e && e.stack) } });
    }
  }
  busy = false;
}
const rl = require('readline').createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on('line', (line) => { queue.push(line); pump(); });
rl.on('close', () => process.exit(0));
'''


# ---------------------------------------------------------------------------
# Kernels
# ---------------------------------------------------------------------------

try:
    import ctypes
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
    _prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                       ctypes.c_ulong]
except (ImportError, OSError, AttributeError):
    _prctl = None


def _child_setup():
    # Die with the spawner thread, hence with the fake, even on SIGKILL.
    if _prctl is not None:
        _prctl(1, signal.SIGKILL, 0, 0, 0)    # PR_SET_PDEATHSIG


class _Spawner:
    """Starts every kernel from one long-lived thread.

    PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, so
    children must not be forked by short-lived request handler threads."""

    def __init__(self):
        self._q = collections.deque()
        self._cv = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="fake-agentbay-spawner",
                                        daemon=True)
        self._thread.start()

    def _loop(self):
        while True:
            with self._cv:
                while not self._q and not self._closed:
                    self._cv.wait()
                if not self._q:
                    return
                fn, box, done = self._q.popleft()
            try:
                box["value"] = fn()
            except BaseException as e:     # handed back to the caller
                box["error"] = e
            done.set()

    def call(self, fn):
        box, done = {}, threading.Event()
        with self._cv:
            if self._closed:
                raise RuntimeError("the fake is stopping")
            self._q.append((fn, box, done))
            self._cv.notify()
        done.wait()
        if "error" in box:
            raise box["error"]
        return box["value"]

    def close(self):
        with self._cv:
            self._closed = True
            self._cv.notify()
        self._thread.join(5)


class _Kernel:
    def __init__(self, language, cwd, spawner, verbose):
        self.language = language
        self.count = 0
        self._lock = threading.Lock()
        self.dead = False
        if language == "python":
            argv = [PYTHON, "-I", "-u", "-c", PY_DRIVER]
        else:
            node = shutil.which("node") or shutil.which("nodejs")
            if node is None:
                raise OSError("node is not installed")
            argv = [node, "-e", JS_DRIVER]
        rfd, wfd = os.pipe()
        env = dict(os.environ)
        env.pop("NODE_OPTIONS", None)
        env["FAKE_KERNEL_FD"] = str(wfd)
        err = None if verbose else subprocess.DEVNULL
        try:
            self.proc = spawner.call(lambda: subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=err,
                pass_fds=(wfd,), env=env, cwd=cwd, start_new_session=True,
                preexec_fn=_child_setup))
        except BaseException:
            os.close(rfd)
            raise
        finally:
            os.close(wfd)
        self.pid = self.proc.pid
        self._rfd = rfd
        self._busy = False

    def kill(self):
        with self._lock:
            if self.dead:
                return
            self.dead = True
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            self.proc.kill()
        except OSError:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        self._close_fd(False)

    def _close_fd(self, from_execute):
        # The fd must not be closed under a running execute(): its number
        # could be reused while that thread still polls it.
        with self._lock:
            if self._rfd is None or (self._busy and not from_execute):
                return
            fd, self._rfd = self._rfd, None
        os.close(fd)

    def execute(self, code, timeout_s, stop):
        """Runs code; returns a dict with stdout, stderr, results, error,
        timed_out, died, ms and count."""
        with self._lock:
            if self.dead:
                raise OSError("the kernel is dead")
            self._busy = True
        try:
            return self._execute(code, timeout_s, stop)
        finally:
            with self._lock:
                self._busy = False
                dead = self.dead
            if dead:
                self._close_fd(True)

    def _execute(self, code, timeout_s, stop):
        self.count += 1
        rid = self.count
        out = {"stdout": [], "stderr": [], "results": [], "main": None, "error": None,
               "timed_out": False, "died": False, "count": rid}
        sizes = {"stdout": 0, "stderr": 0}
        t0 = time.monotonic()
        try:
            self.proc.stdin.write(json.dumps({"id": rid, "code": code}).encode("utf-8") + b"\n")
            self.proc.stdin.flush()
        except (OSError, ValueError):
            out["died"] = True
        poller = select.poll()
        if not out["died"]:
            poller.register(self._rfd, select.POLLIN)
        buf = bytearray()
        deadline = t0 + timeout_s
        done = out["died"]
        while not done:
            now = time.monotonic()
            if stop.is_set() or self.dead:
                out["died"] = True
                break
            if now >= deadline:
                out["timed_out"] = True
                break
            try:
                ready = poller.poll(min(deadline - now, 0.25) * 1000)
            except OSError:
                ready = [(self._rfd, select.POLLHUP)]
            if not ready:
                continue
            try:
                chunk = os.read(self._rfd, 1 << 20)
            except OSError:
                chunk = b""
            if not chunk:
                out["died"] = True
                break
            buf += chunk
            while True:
                nl = buf.find(b"\n")
                if nl < 0:
                    break
                line = bytes(buf[:nl])
                del buf[:nl + 1]
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(ev, dict) or ev.get("id") != rid:
                    continue
                kind = ev.get("ev")
                if kind in ("stdout", "stderr"):
                    text = ev.get("text", "")
                    if sizes[kind] < OUTPUT_CAP:
                        if sizes[kind] + len(text) > OUTPUT_CAP:
                            text = text[:OUTPUT_CAP - sizes[kind]] + "\n[output truncated]\n"
                        sizes[kind] += len(text)
                        out[kind].append(text)
                elif kind == "display":
                    out["results"].append(ev.get("data") or {})
                elif kind == "done":
                    out["main"] = ev.get("result")
                    out["error"] = ev.get("error")
                    done = True
                    break
        out["ms"] = int((time.monotonic() - t0) * 1000)
        if out["timed_out"] or out["died"]:
            if out["died"] and self.proc.poll() is None and not self.dead:
                time.sleep(0.05)
            out["exit_status"] = self.proc.poll()
            self.kill()
        return out


# ---------------------------------------------------------------------------
# Sessions and helpers
# ---------------------------------------------------------------------------

class _Session:
    def __init__(self, sid, image, labels):
        self.id = sid
        self.image = image
        self.labels = labels
        self.created = time.time()
        self.kernels = {}
        self.lock = threading.Lock()     # serialises run_code calls
        self.released = False
        self.workdir = None
        self.app_instance_id = "ai-" + secrets.token_hex(8)
        self.resource_id = "p-" + secrets.token_hex(8)


class _Reject(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class _Req:
    pass


def _parse_form(raw, what):
    """Strictly parses an application/x-www-form-urlencoded string."""
    if not FORM_CHARS_RE.match(raw):
        raise _Reject(400, "InvalidParameter",
                      "%s contains characters that must be percent-encoded" % what)
    if BAD_ESCAPE_RE.search(raw):
        raise _Reject(400, "InvalidParameter", "%s contains a malformed %%-escape" % what)
    if not raw:
        return {}
    try:
        pairs = parse_qsl(raw.decode("ascii"), keep_blank_values=True, strict_parsing=True,
                          encoding="utf-8", errors="strict")
    except (ValueError, UnicodeError) as e:
        raise _Reject(400, "InvalidParameter", "%s is not a valid form: %s" % (what, e))
    out = {}
    for k, v in pairs:
        if k in out:
            raise _Reject(400, "InvalidParameter", "duplicate parameter %s in %s" % (k, what))
        out[k] = v
    return out


# ---------------------------------------------------------------------------
# HTTP plumbing
# ---------------------------------------------------------------------------

class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, fake):
        self.fake = fake
        super().__init__(addr, _Handler)

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, OSError)):
            return
        sys.stderr.write("fake_agentbay: internal error\n")
        traceback.print_exc()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeAgentBay/1.0"
    sys_version = ""
    timeout = 120         # idle keep-alive connections are dropped after this

    def setup(self):
        super().setup()
        self.server.fake._track(self.connection, True)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.fake._track(self.connection, False)

    def log_message(self, fmt, *args):
        pass

    def version_string(self):
        return self.server_version

    def do_POST(self):
        self.server.fake._serve(self)

    do_GET = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_POST

    # -- response writers ---------------------------------------------------

    def write_reply(self, status, body, ctype="application/json;charset=utf-8",
                    request_id=None, content_length=None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) if content_length is None
                                               else content_length))
        if request_id:
            self.send_header("x-acs-request-id", request_id)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def client_gone(self, cap, stop):
        """Waits until the peer closes the connection (True) or cap seconds."""
        deadline = time.monotonic() + cap
        while time.monotonic() < deadline and not stop.is_set():
            try:
                r, _, _ = select.select([self.connection], [], [], 0.2)
                if r:
                    if not self.connection.recv(1, socket.MSG_PEEK):
                        return True
                    time.sleep(0.2)
            except (OSError, ValueError):
                return True
        return False


# ---------------------------------------------------------------------------
# The fake
# ---------------------------------------------------------------------------

class FakeAgentBay:
    """The fake service.  See the module docstring for the API."""

    def __init__(self, key, max_sessions=None, verbose=False, host="127.0.0.1", port=0):
        if not key:
            raise ValueError("key must not be empty")
        self.key = key
        self.max_sessions = max_sessions
        self.verbose = verbose
        self.host = host
        self.port = port
        self.url = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._sessions = {}
        self._deleting = {}        # id -> GetSessionDetail polls so far
        self._nonces = set()
        self._faults = []          # [action, fault, remaining, seconds]
        self._variants = dict(DEFAULT_VARIANTS)
        self._created = 0
        self._released = 0
        self._calls = collections.Counter()
        self._log = collections.deque(maxlen=REQUEST_LOG)
        self._conns = set()
        self._server = None
        self._thread = None
        self._spawner = None

    # -- lifecycle ------------------------------------------------------------

    def start(self):
        """Binds, serves in a background thread and returns the base URL."""
        if self._server is not None:
            return self.url
        self._stop.clear()
        self._spawner = _Spawner()
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self.url = "http://%s:%d" % (self.host, self.port)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1},
                                        name="fake-agentbay", daemon=True)
        self._thread.start()
        return self.url

    def stop(self):
        """Stops serving, drops connections and kills every kernel."""
        if self._server is None:
            return
        self._stop.set()
        self._server.shutdown()
        self._thread.join(5)
        with self._lock:
            conns = list(self._conns)
            sessions = list(self._sessions.values())
            self._sessions.clear()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for s in sessions:
            self._drop_session(s)
        self._server.server_close()
        self._spawner.close()
        self._server = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def _track(self, conn, add):
        with self._lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    # -- admin operations -------------------------------------------------------

    def stats(self):
        with self._lock:
            kernels = []
            for s in self._sessions.values():
                for lang, k in s.kernels.items():
                    if not k.dead:
                        kernels.append({"session": s.id, "language": lang, "pid": k.pid})
            return {
                "created": self._created,
                "released": self._released,
                "live": len(self._sessions),
                "live_ids": sorted(self._sessions),
                "calls": dict(self._calls),
                "requests": list(self._log),
                "kernels": kernels,
                "faults": [{"action": a, "fault": f, "count": n, "seconds": s}
                           for a, f, n, s in self._faults],
                "variants": dict(self._variants),
            }

    def fault(self, action, fault, count=1, seconds=None):
        """Queues a fault for the next `count` valid requests of `action` ("*" = any)."""
        if not isinstance(action, str) or not action:
            raise ValueError("action must be an action name or *")
        if fault not in FAULTS:
            raise ValueError("unknown fault %r (known: %s)" % (fault, ", ".join(FAULTS)))
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError("count must be an integer >= 1")
        if seconds is None:
            seconds = 1.0
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
            raise ValueError("seconds must be a number >= 0")
        with self._lock:
            self._faults.append([action, fault, count, float(seconds)])

    def variant(self, **switches):
        """Sets persistent CallMcpTool reply switches; returns all of them."""
        for k, v in switches.items():
            if k in BOOL_VARIANTS:
                if not isinstance(v, bool):
                    raise ValueError("%s must be true or false" % k)
            elif k == "timeout_mode":
                if v not in TIMEOUT_MODES:
                    raise ValueError("timeout_mode must be one of %s" % ", ".join(TIMEOUT_MODES))
            elif k == "quota_mode":
                if v not in QUOTA_MODES:
                    raise ValueError("quota_mode must be one of %s" % ", ".join(QUOTA_MODES))
            elif k == "payload_limit":
                if v is None:
                    switches[k] = DEFAULT_VARIANTS[k]
                elif isinstance(v, bool) or not isinstance(v, int) or v < 1:
                    raise ValueError("payload_limit must be an integer >= 1")
            else:
                raise ValueError("unknown variant %r" % k)
        with self._lock:
            self._variants.update(switches)
            return dict(self._variants)

    def reset(self):
        """Clears queued faults and variants (not sessions or counters)."""
        with self._lock:
            self._faults.clear()
            self._variants = dict(DEFAULT_VARIANTS)

    def expire(self, session_id):
        """Releases a session server-side (as an idle timeout would)."""
        return self._release(session_id)

    # -- sessions ---------------------------------------------------------------

    def _release(self, sid):
        with self._lock:
            s = self._sessions.pop(sid, None)
            if s is None:
                return False
            self._released += 1
        self._drop_session(s)
        return True

    def _drop_session(self, s):
        s.released = True
        for k in list(s.kernels.values()):
            k.kill()
        if s.workdir:
            shutil.rmtree(s.workdir, ignore_errors=True)

    def _kernel(self, s, language):
        k = s.kernels.get(language)
        if k is not None and not k.dead:
            return k
        if s.workdir is None:
            s.workdir = tempfile.mkdtemp(prefix="fake-agentbay-%s-" % s.id)
        k = _Kernel(language, s.workdir, self._spawner, self.verbose)
        with self._lock:
            s.kernels[language] = k
            gone = s.released
        if gone:
            k.kill()
        return k

    # -- request entry point ------------------------------------------------------

    def _serve(self, h):
        t0 = time.monotonic()
        status = "-"
        try:
            status = self._serve2(h)
        except (ConnectionError, TimeoutError, socket.timeout):
            h.close_connection = True
            status = "disconnected"
        except Exception:
            h.close_connection = True
            sys.stderr.write("fake_agentbay: internal error on %s %s\n" % (h.command, h.path))
            traceback.print_exc()
            try:
                self._send_pop(h, 500, "InternalError", "internal error in the fake")
            except OSError:
                pass
            status = 500
        if self.verbose:
            sys.stderr.write("fake_agentbay: %s %s -> %s (%d ms)\n" % (
                h.command, h.path[:120], status, (time.monotonic() - t0) * 1000))
            sys.stderr.flush()

    def _read_body(self, h):
        if "transfer-encoding" in {k.lower() for k in h.headers.keys()}:
            h.close_connection = True
            raise _Reject(400, "InvalidParameter", "chunked request bodies are not supported")
        cl = h.headers.get("Content-Length")
        if cl is None:
            if h.command == "POST":
                h.close_connection = True
                raise _Reject(411, "MissingParameter", "Content-Length is required")
            return b""
        try:
            n = int(cl)
            if n < 0:
                raise ValueError
        except ValueError:
            h.close_connection = True
            raise _Reject(400, "InvalidParameter", "bad Content-Length")
        if n > MAX_BODY:
            h.close_connection = True
            raise _Reject(413, "InvalidParameter", "request body too large")
        body = h.rfile.read(n)
        if len(body) != n:
            h.close_connection = True
            raise ConnectionError("short body")
        return body

    def _serve2(self, h):
        url = urlsplit(h.path)
        try:
            body = self._read_body(h)
        except _Reject as r:
            self._send_pop(h, r.status, r.code, r.message)
            return r.status
        if url.path.startswith("/_admin/"):
            return self._admin(h, url, body)
        req = _Req()
        req.method = h.command
        req.path = url.path
        req.raw_query = url.query.encode("latin-1", "replace")
        req.headers = {k.lower(): v for k, v in h.headers.items()}
        req.body = body
        req.query = {}
        req.form = {}
        for k, v in parse_qsl(url.query, keep_blank_values=True):
            req.query[k] = v
        req.action = req.query.get("Action") or req.headers.get("x-acs-action") or "<none>"
        try:
            req.form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        except ValueError:
            pass
        with self._lock:
            self._calls[req.action] += 1
            entry = {"action": req.action, "method": req.method, "path": req.path,
                     "query": dict(req.query), "headers": dict(req.headers),
                     "form": dict(req.form), "status": None}
            self._log.append(entry)
        kind = self._api(h, req)
        entry["status"] = kind
        return kind

    # -- replies ----------------------------------------------------------------

    def _send_json(self, h, status, obj):
        rid = obj.get("RequestId") if isinstance(obj, dict) else None
        body = json.dumps(obj, ensure_ascii=False).encode("utf-8")
        h.write_reply(status, body, request_id=rid)
        return status

    def _send_pop(self, h, status, code, message):
        return self._send_json(h, status, {
            "RequestId": _request_id(), "HostId": HOST_ID, "Code": code, "Message": message,
            "Recommend": "https://api.aliyun.com/troubleshoot?q=%s&product=wuyingai" % code})

    @staticmethod
    def _envelope(data=None, with_data=True):
        env = {"RequestId": _request_id(), "Success": True, "Code": "ok", "Message": "",
               "HttpStatusCode": 200}
        if with_data:
            env["Data"] = data
        return env

    # -- the OpenAPI ------------------------------------------------------------

    def _api(self, h, req):
        try:
            self._validate(h, req)
        except _Reject as r:
            return self._send_pop(h, r.status, r.code, r.message)
        fault = self._take_fault(req.action)
        if fault is not None:
            name, seconds = fault
            if name == "stall":
                self._stop.wait(seconds)
            else:
                return self._do_fault(h, req, name)
        handler = getattr(self, "_act_" + req.action)
        try:
            return handler(h, req)
        except _Reject as r:
            return self._send_pop(h, r.status, r.code, r.message)

    def _validate(self, h, req):
        if req.method != "POST":
            raise _Reject(400, "UnsupportedHTTPMethod",
                          "HTTP method %s is not supported; use POST" % req.method)
        if req.path != "/":
            raise _Reject(400, "InvalidParameter", "the request path must be /")
        query = _parse_form(req.raw_query, "the query string")
        req.query = query
        action = query.get("Action")
        if not action:
            raise _Reject(400, "MissingParameter", "Action is mandatory for this action.")
        version = query.get("Version")
        if not version:
            raise _Reject(400, "MissingParameter", "Version is mandatory for this action.")
        if version != API_VERSION:
            raise _Reject(400, "InvalidVersion",
                          "Specified parameter Version is not valid: %s" % version)
        fmt = query.get("Format")
        if not fmt:
            raise _Reject(400, "MissingParameter", "Format is mandatory for this action.")
        if fmt != "json":
            raise _Reject(400, "InvalidParameter", "Format must be json, not %s" % fmt)
        ts = query.get("Timestamp")
        if not ts:
            raise _Reject(400, "MissingParameter", "Timestamp is mandatory for this action.")
        try:
            if not TIMESTAMP_RE.match(ts):
                raise ValueError
            datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            raise _Reject(400, "InvalidTimeStamp.Format",
                          "Specified time stamp %r does not match YYYY-MM-DDThh:mm:ssZ" % ts)
        nonce = query.get("SignatureNonce")
        if not nonce:
            raise _Reject(400, "MissingParameter", "SignatureNonce is mandatory for this action.")
        with self._lock:
            if nonce in self._nonces:
                raise _Reject(400, "SignatureNonceUsed",
                              "Specified signature nonce was used already.")
            self._nonces.add(nonce)
        hd = req.headers
        if not hd.get("host"):
            raise _Reject(400, "MissingParameter", "the Host header is required")
        for name, want in (("x-acs-action", action), ("x-acs-version", version)):
            got = hd.get(name)
            if got is None:
                raise _Reject(400, "MissingParameter", "the %s header is required" % name)
            if got != want:
                raise _Reject(400, "InvalidParameter",
                              "the %s header (%s) does not match %s" % (name, got, want))
        ctype = hd.get("content-type")
        if ctype is None:
            raise _Reject(400, "MissingParameter", "the Content-Type header is required")
        if ctype.split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
            raise _Reject(400, "InvalidParameter",
                          "Content-Type must be application/x-www-form-urlencoded")
        req.form = _parse_form(req.body, "the request body")
        if "authorization" in hd or "Authorization" in query:
            raise _Reject(400, "InvalidParameter",
                          "the API key must only be sent as the Authorization form field")
        if req.form.get("Authorization") != "Bearer " + self.key:
            raise _Reject(400, "NOT_LOGIN", NOT_LOGIN_MESSAGE)
        if action not in ACTIONS:
            raise _Reject(400, "InvalidAction.NotFound",
                          "Specified api is not found, please check your url and method.")
        spec = ACTIONS[action]
        for k in query:
            if k not in COMMON_QUERY and k not in spec.get("query", ()):
                raise _Reject(400, "InvalidParameter", "unexpected query parameter %s" % k)
        for k in req.form:
            if k != "Authorization" and k not in spec["form"]:
                raise _Reject(400, "InvalidParameter", "unexpected parameter %s" % k)
        req.action = action

    def _take_fault(self, action):
        with self._lock:
            for f in self._faults:
                if f[0] == "*" or f[0] == action:
                    f[2] -= 1
                    if f[2] <= 0:
                        self._faults.remove(f)
                    return f[1], f[3]
        return None

    def _do_fault(self, h, req, name):
        if name == "http500":
            return self._send_pop(h, 500, "InternalError",
                                  "The request processing has failed due to some unknown error.")
        if name == "http503":
            return self._send_pop(h, 503, "ServiceUnavailable", "The request has failed due "
                                  "to a temporary failure of the server.")
        if name == "throttling":
            return self._send_pop(h, 400, "Throttling.User", THROTTLING_MESSAGE)
        if name == "not_login":
            return self._send_pop(h, 400, "NOT_LOGIN", NOT_LOGIN_MESSAGE)
        if name == "session_gone":
            sid = req.form.get("SessionId") or req.query.get("SessionId")
            if sid:
                self._release(sid)
            return self._send_pop(h, 400, "InvalidMcpSession.NotFound",
                                  "The specified session %s does not exist." % sid)
        if name == "close":
            h.close_connection = True
            return "closed"
        if name == "garbage":
            h.write_reply(200, b"<html><body><h1>502 Bad Gateway</h1></body></html>\n",
                          ctype="text/html")
            return 200
        if name == "truncated":
            body = json.dumps(self._envelope({"content": [{"type": "text", "text": "x" * 512}],
                                              "isError": False})).encode()
            h.close_connection = True
            h.write_reply(200, body[:len(body) // 2], content_length=len(body))
            return "truncated"
        if name == "huge":
            return self._send_huge(h)
        if name == "success_false":
            env = self._envelope(with_data=False)
            env.update(Success=False, Code="InternalError", Message="internal error",
                       HttpStatusCode=500)
            return self._send_json(h, 200, env)
        if name == "tool_not_found":
            return self._send_json(h, 200, self._envelope(self._tool_not_found("run_code")))
        if name == "empty_data":
            return self._send_json(h, 200, self._envelope(with_data=False))
        raise AssertionError(name)

    def _send_huge(self, h):
        rid = _request_id()
        head = ('{"RequestId":"%s","Success":true,"Code":"ok","Message":"",'
                '"HttpStatusCode":200,"Data":{"content":[{"type":"text","text":'
                '"{\\"stdout\\":[\\"' % rid).encode()
        tail = ('\\"],\\"stderr\\":[],\\"result\\":[],\\"executionError\\":\\"\\",'
                '\\"traceId\\":\\"%s\\"}"}],"isError":false}}' % secrets.token_hex(16)).encode()
        fill = HUGE_SIZE - len(head) - len(tail)
        h.send_response(200)
        h.send_header("Content-Type", "application/json;charset=utf-8")
        h.send_header("Content-Length", str(HUGE_SIZE))
        h.send_header("x-acs-request-id", rid)
        h.end_headers()
        h.wfile.write(head)
        block = b"A" * (1 << 20)
        while fill > 0:
            n = min(fill, len(block))
            h.wfile.write(block[:n])
            fill -= n
        h.wfile.write(tail)
        h.wfile.flush()
        return 200

    # -- actions ------------------------------------------------------------------

    @staticmethod
    def _opt(form, name):
        v = form.get(name)
        return v if v else None

    @staticmethod
    def _json_param(form, name, kind):
        v = form.get(name)
        if not v:
            return None
        try:
            val = json.loads(v)
        except ValueError:
            raise _Reject(400, "InvalidParameter", "%s must be a JSON %s" % (name, kind.__name__))
        if not isinstance(val, kind):
            raise _Reject(400, "InvalidParameter", "%s must be a JSON %s" % (name, kind.__name__))
        return val

    @staticmethod
    def _bool_param(form, name):
        v = form.get(name)
        if not v:
            return None
        if v.lower() not in ("true", "false"):
            raise _Reject(400, "InvalidParameter", "%s must be true or false" % name)
        return v.lower() == "true"

    def _session(self, sid):
        if not sid:
            raise _Reject(400, "MissingParameter", "SessionId is mandatory for this action.")
        with self._lock:
            s = self._sessions.get(sid)
        if s is None:
            raise _Reject(400, "InvalidMcpSession.NotFound",
                          "The specified session %s does not exist." % sid)
        return s

    def _act_CreateMcpSession(self, h, req):
        f = req.form
        image = self._opt(f, "ImageId") or DEFAULT_IMAGE
        labels = self._json_param(f, "Labels", dict)
        self._json_param(f, "SdkStats", dict)
        self._json_param(f, "ExtraConfigs", dict)
        self._json_param(f, "PersistenceDataList", list)
        self._bool_param(f, "EnableRecord")
        self._bool_param(f, "VpcResource")
        with self._lock:
            if self.max_sessions is not None and len(self._sessions) >= self.max_sessions:
                quota = self._variants["quota_mode"]
                msg = "The number of sessions exceeds the quota (at most %d)." % self.max_sessions
            else:
                quota = None
                alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
                while True:
                    sid = "session-" + "".join(secrets.choice(alphabet) for _ in range(16))
                    if sid not in self._sessions and sid not in self._deleting:
                        break
                s = _Session(sid, image, labels)
                self._sessions[sid] = s
                self._created += 1
        if quota == "http400":
            return self._send_pop(h, 400, "QuotaExceeded", msg)
        if quota == "envelope":
            env = self._envelope(with_data=False)
            env.update(Success=False, Code="QuotaExceeded", Message=msg, HttpStatusCode=400)
            return self._send_json(h, 200, env)
        return self._send_json(h, 200, self._envelope({
            "SessionId": s.id, "Success": True, "ErrMsg": "",
            "ResourceUrl": "https://fake-agentbay.invalid/resource?authcode=%s&resourceId=%s"
                           % (secrets.token_hex(8), s.resource_id),
            "AppInstanceId": s.app_instance_id, "ResourceId": s.resource_id,
            "HttpPort": "", "NetworkInterfaceIp": "", "VpcResource": False,
            "LinkUrl": "", "Token": "", "ToolList": _tool_list(image)}))

    def _act_ReleaseMcpSession(self, h, req):
        sid = req.form.get("SessionId")
        self._session(sid)
        if not self._release(sid):
            self._session(sid)
        return self._send_json(h, 200, self._envelope(with_data=False))

    def _act_DeleteSessionAsync(self, h, req):
        sid = req.form.get("SessionId")
        self._session(sid)
        if not self._release(sid):
            self._session(sid)
        with self._lock:
            self._deleting[sid] = 0
        return self._send_json(h, 200, self._envelope(with_data=False))

    def _act_GetSessionDetail(self, h, req):
        sid = req.query.get("SessionId")
        if not sid:
            raise _Reject(400, "MissingParameter",
                          "SessionId (in the query string) is mandatory for this action.")
        with self._lock:
            s = self._sessions.get(sid)
            image = s.image if s else None
            if s is not None:
                status = "RUNNING"
            elif sid in self._deleting:
                self._deleting[sid] += 1
                status = ("DELETING" if self._deleting[sid] <= DETAIL_DELETING_POLLS
                          else "FINISH")
            else:
                status = None
        if status is None:
            raise _Reject(400, "InvalidMcpSession.NotFound",
                          "The specified session %s does not exist." % sid)
        return self._send_json(h, 200, self._envelope({
            "Aliuid": "1234567890", "ApikeyId": "ak-fake", "AppInstanceGroupId": "aig-fake",
            "AppInstanceId": s.app_instance_id if s else "", "AppUserId": "fake-user",
            "BizType": 1, "EndReason": "" if s else "USER_DELETE", "Id": 1,
            "ImageId": image or "", "ImageType": "System", "IsDeleted": 0 if s else 1,
            "PolicyId": "", "RegionId": "cn-shanghai", "ResourceConfigId": "rc-fake",
            "Status": status}))

    def _act_GetSession(self, h, req):
        s = self._session(req.form.get("SessionId"))
        return self._send_json(h, 200, self._envelope({
            "SessionId": s.id, "Status": "RUNNING", "AppInstanceId": s.app_instance_id,
            "ResourceId": s.resource_id, "ResourceUrl": "", "HttpPort": "",
            "NetworkInterfaceIp": "", "Token": "", "LinkUrl": "",
            "ToolList": _tool_list(s.image), "VpcResource": False, "Success": True,
            "contexts": []}))

    def _act_ListMcpTools(self, h, req):
        image = self._opt(req.form, "ImageId") or DEFAULT_IMAGE
        return self._send_json(h, 200, self._envelope(_tool_list(image)))

    @staticmethod
    def _tool_not_found(name):
        return {"content": [{"type": "text", "text": "tool %s not found" % name}],
                "isError": True}

    def _act_CallMcpTool(self, h, req):
        f = req.form
        with self._lock:
            v = dict(self._variants)
        args_raw = f.get("Args")
        if args_raw is not None and len(args_raw.encode("utf-8")) > v["payload_limit"]:
            raise _Reject(400, "InvalidParameter.ArgsTooLarge",
                          "Args is %d bytes, more than the limit of %d bytes"
                          % (len(args_raw.encode("utf-8")), v["payload_limit"]))
        s = self._session(f.get("SessionId"))
        name = f.get("Name")
        if not name:
            raise _Reject(400, "MissingParameter", "Name is mandatory for this action.")
        auto = f.get("AutoGenSession")
        if auto is not None and auto.lower() != "false":
            raise _Reject(400, "InvalidParameter", "AutoGenSession must be false")
        server = f.get("Server")
        if server and server != CODE_SERVER:
            raise _Reject(400, "InvalidParameter", "unknown Server %s" % server)
        if not args_raw:
            raise _Reject(400, "MissingParameter", "Args is mandatory for this action.")
        try:
            args = json.loads(args_raw)
        except ValueError:
            raise _Reject(400, "InvalidParameter", "Args must be a JSON object")
        if not isinstance(args, dict):
            raise _Reject(400, "InvalidParameter", "Args must be a JSON object")
        if s.image != CODE_IMAGE or name != "run_code":
            return self._tool_reply(h, v, self._tool_not_found(name))
        extra = set(args) - {"code", "language", "timeout_s"}
        if extra:
            raise _Reject(400, "InvalidParameter",
                          "unexpected run_code argument(s): %s" % ", ".join(sorted(extra)))
        code = args.get("code")
        if not isinstance(code, str):
            raise _Reject(400, "InvalidParameter", "Args.code must be a string")
        lang = args.get("language")
        if lang not in ("python", "javascript"):
            raise _Reject(400, "InvalidParameter",
                          "Args.language must be python or javascript, not %r" % (lang,))
        tmo = args.get("timeout_s")
        if isinstance(tmo, bool) or not isinstance(tmo, int) or tmo < 1:
            raise _Reject(400, "InvalidParameter", "Args.timeout_s must be an integer >= 1")

        with s.lock:
            if s.released:
                raise _Reject(400, "InvalidMcpSession.NotFound",
                              "The specified session %s does not exist." % s.id)
            try:
                kernel = self._kernel(s, lang)
                res = kernel.execute(code, tmo, self._stop)
            except (OSError, RuntimeError) as e:
                res = {"stdout": [], "stderr": [], "results": [], "main": None,
                       "error": {"name": "KernelError",
                                 "value": "could not start the %s kernel: %s" % (lang, e),
                                 "traceback": ""},
                       "timed_out": False, "died": False, "ms": 0, "count": 0}
        if s.released:
            raise _Reject(400, "InvalidMcpSession.NotFound",
                          "The specified session %s does not exist." % s.id)
        if res["timed_out"]:
            res["error"] = {"name": "TimeoutError",
                            "value": "code execution timed out after %d seconds" % tmo,
                            "traceback": ""}
            mode = v["timeout_mode"]
            if mode == "http504":
                return self._send_pop(h, 504, "GatewayTimeout",
                                      "The request timed out in the gateway.")
            if mode == "stall":
                if h.client_gone(STALL_CAP, self._stop):
                    h.close_connection = True
                    return "abandoned"
        elif res["died"] and res["error"] is None:
            res["error"] = {"name": "KernelDied",
                            "value": "the %s kernel exited unexpectedly (status %s)"
                                     % (lang, res.get("exit_status")),
                            "traceback": ""}
        return self._tool_reply(h, v, self._run_code_data(res, v))

    def _tool_reply(self, h, v, data):
        if v["data_as_string"]:
            data = json.dumps(data, ensure_ascii=False)
        return self._send_json(h, 200, self._envelope(data))

    @staticmethod
    def _run_code_data(res, v):
        results = list(res["results"])
        if res["main"]:
            results.append(res["main"])
        err = res["error"]
        stderr = list(res["stderr"])
        exec_error = "%s: %s" % (err["name"], err["value"]) if err else ""
        is_error = bool(err)
        if err and (v["iserror_empty_execution_error"] or v["error_without_iserror"]):
            exec_error = ""
            if not err.get("traceback"):
                stderr.append(("%s: %s\n" % (err["name"], err["value"])))
            if v["error_without_iserror"]:
                is_error = False
        if v["plain_text"]:
            text = "".join(res["stdout"])
            if err:
                text += "".join(stderr)
        elif v["legacy_rich"]:
            items = []
            for r in results:
                item = {}
                for mime, val in r.items():
                    if mime == "isMainResult":
                        item["is_main_result"] = val
                    elif mime in LEGACY_FIELDS:
                        item[LEGACY_FIELDS[mime]] = val
                items.append(item)
            inner = {"logs": {"stdout": res["stdout"], "stderr": stderr}, "results": items,
                     "execution_count": res["count"], "execution_time": res["ms"] / 1000.0,
                     "isError": is_error}
            if err:
                inner["error"] = {"name": err["name"], "value": err["value"],
                                  "traceback": err.get("traceback", "")}
            text = _compact(inner)
        else:
            items = []
            for r in results:
                item = r if v["results_as_objects"] else _compact(r)
                if v["double_encode_results"]:
                    item = _compact(item)
                items.append(item)
            if v["nested_results"] and items:
                items = [items]
            inner = {"stdout": res["stdout"], "stderr": stderr, "result": items,
                     "executionError": exec_error, "traceId": secrets.token_hex(16)}
            if v["snake_case"]:
                inner["execution_time"] = res["ms"]
                inner["execution_count"] = res["count"]
            else:
                inner["executionTime"] = res["ms"]
                inner["executionCount"] = res["count"]
            text = _compact(inner)
        return {"content": [{"type": "text", "text": text}], "isError": is_error,
                "parsedToolName": "run_code"}

    # -- admin endpoints ---------------------------------------------------------

    def _admin(self, h, url, body):
        def reply(status, obj):
            h.write_reply(status, json.dumps(obj).encode("utf-8"))
            return status

        op = url.path[len("/_admin/"):]
        if h.command == "GET" and op == "stats":
            return reply(200, self.stats())
        if h.command == "GET" and op == "variant":
            with self._lock:
                return reply(200, dict(self._variants))
        if h.command != "POST" or op not in ("fault", "variant", "reset", "expire"):
            return reply(404, {"error": "unknown admin endpoint %s %s" % (h.command, url.path)})
        try:
            arg = json.loads(body) if body.strip() else {}
        except ValueError:
            return reply(400, {"error": "the body must be JSON"})
        if not isinstance(arg, dict):
            return reply(400, {"error": "the body must be a JSON object"})
        try:
            if op == "fault":
                unknown = set(arg) - {"action", "fault", "count", "seconds"}
                if unknown:
                    raise ValueError("unknown key(s): %s" % ", ".join(sorted(unknown)))
                self.fault(arg.get("action"), arg.get("fault"), arg.get("count", 1),
                           arg.get("seconds"))
                return reply(200, {"ok": True})
            if op == "variant":
                return reply(200, self.variant(**arg))
            if op == "reset":
                self.reset()
                return reply(200, {"ok": True})
            sid = arg.get("session_id")
            if not isinstance(sid, str):
                raise ValueError("session_id must be a string")
            return reply(200, {"ok": True, "released": self.expire(sid)})
        except (ValueError, TypeError) as e:
            return reply(400, {"error": str(e)})


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description="Fake AgentBay OpenAPI service (tests only).")
    ap.add_argument("--key", required=True, help="the API key clients must send")
    ap.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0 = any)")
    ap.add_argument("--port-file", help="write the port number to this file when ready")
    ap.add_argument("--max-sessions", type=int, default=None,
                    help="refuse CreateMcpSession beyond this many live sessions")
    ap.add_argument("--verbose", action="store_true", help="log each request to stderr")
    opts = ap.parse_args(argv)

    done = threading.Event()

    def on_signal(signum, frame):
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    fake = FakeAgentBay(opts.key, max_sessions=opts.max_sessions, verbose=opts.verbose,
                        port=opts.port)
    url = fake.start()
    try:
        if opts.port_file:
            tmp = opts.port_file + ".tmp"
            with open(tmp, "w") as f:
                f.write("%d\n" % fake.port)
            os.replace(tmp, opts.port_file)
        sys.stdout.write("listening on %s\n" % url)
        sys.stdout.flush()
        while not done.wait(0.5):
            pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

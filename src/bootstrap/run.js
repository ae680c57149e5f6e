// agentbayfs bootstrap for JavaScript: waits for one script on fd 4, runs it
// as the main module, and reports how it ended on fd 3 as JSON lines, so
// errors come from the interpreter itself rather than from scraping stderr.
// Usage: node -e <this>; then fd 4 gets the length of the script's name in
// decimal and a newline, the name, and the script's bytes up to end of file.
// A warm sandbox is one waiting here.
'use strict';
(function agentbayfsRun() {
  const fs = require('fs');
  const Module = require('module');
  function send(event) {
    try { fs.writeSync(3, JSON.stringify(event) + '\n'); } catch (e) { /* no report channel */ }
  }
  // A warm sandbox sets up ahead what a script's first moments use: the
  // output streams, the CommonJS loader (on a module of its own, gone
  // before the script comes) and console formatting (on a sink of its own).
  // About 2 ms of a small script's run, each on first use.
  if (process.argv[1] === 'warm') {
    process.stdout; // eslint-disable-line no-unused-expressions
    process.stderr; // eslint-disable-line no-unused-expressions
    try {
      const warmFile = require('path').resolve('.agentbayfs-warm.js');
      fs.writeFileSync(warmFile, 'module.exports = require("util").format("%s %d", "a", 1);\n');
      try {
        Module._load(warmFile, null, false);
      } finally {
        delete Module._cache[warmFile];
        fs.unlinkSync(warmFile);
      }
      const { Writable } = require('stream');
      new console.Console(new Writable({ write(c, e, cb) { cb(); } })).log('%s %d %o', 'a', 1, { a: [1] });
    } catch (e) { /* only slower */ }
    // Ready: the daemon hands scripts only to spares that said so.
    send({ event: 'ready' });
  }
  const data = fs.readFileSync(4);
  fs.closeSync(4);
  const nl = data.indexOf(10);
  const start = nl + 1 + parseInt(data.subarray(0, nl).toString('latin1'), 10);
  const name = data.subarray(nl + 1, start);
  const script = require('path').resolve(name.toString('utf8'));
  const fd = fs.openSync(name, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL |
    fs.constants.O_NOFOLLOW, 0o644);
  for (let off = start; off < data.length;) off += fs.writeSync(fd, data, off, data.length - off);
  fs.closeSync(fd);
  send({ event: 'start' });
  process.on('uncaughtExceptionMonitor', (err, origin) => {
    let name = 'Error';
    let value;
    let stack = '';
    if (err !== null && typeof err === 'object') {
      name = String(err.name || (err.constructor && err.constructor.name) || 'Error');
      value = err.message !== undefined ? String(err.message) : String(err);
      // Keep the user's frames; drop node's internals and this bootstrap's.
      stack = err.stack ? String(err.stack).split('\n')
        .filter((l) => !/^\s+at .*(node:internal\/|\[eval\])/.test(l)).join('\n') : '';
    } else {
      value = 'uncaught value ' + (typeof err === 'string' ? JSON.stringify(err) : String(err));
    }
    send({ event: 'error', name, value, traceback: stack, origin });
  });
  // Last of the exit listeners (the script's own run first), then out at
  // once: node's own teardown takes longer than a small script's whole run.
  // Output to pipes is written synchronously, so nothing is lost.
  process.on('exit', function agentbayfsExit(code) {
    const rest = process.listeners('exit').filter((l) => l !== agentbayfsExit);
    process.removeAllListeners('exit');
    for (const l of rest) l.call(process, code);
    if (process.exitCode !== undefined) code = process.exitCode;
    send({ event: 'exit', code });
    // The output closed: the daemon ends the run without waiting for the
    // process and the sandbox to go.
    for (const fd of [1, 2, 3]) {
      try { fs.closeSync(fd); } catch (e) { /* already closed */ }
    }
    process.reallyExit(code);
  });
  process.argv = [process.argv[0], script];
  // As the main module (require.main), without runMain's ES module checks:
  // a .js file with no package.json is CommonJS either way.
  Module._load(script, null, true);
})();

// agentbayfs bootstrap for JavaScript: runs one saved script as the main
// module and reports how it ended on fd 3 as JSON lines, so errors come from
// the interpreter itself rather than from scraping stderr.
// Usage: node -e <this> /work/<script>
'use strict';
(function agentbayfsRun() {
  const fs = require('fs');
  const Module = require('module');
  function send(event) {
    try { fs.writeSync(3, JSON.stringify(event) + '\n'); } catch (e) { /* no report channel */ }
  }
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
  process.on('exit', (code) => send({ event: 'exit', code }));
  const script = process.argv[process.argv.length - 1];
  process.argv = [process.argv[0], script];
  Module.runMain(script);
})();

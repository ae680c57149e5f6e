// Fork bomb: a bash bomb started from node, where every shell forks two
// copies of itself and waits for them, and node itself spawning without end.
// The process limit (-o max_procs) refuses forks; the time limit then stops
// the run and the whole tree goes.
'use strict';
const fs = require('fs');
const { spawn } = require('child_process');

const LIMIT = parseInt('@MAX_PROCS@', 10);
spawn('/bin/bash', ['-c', 'b() { b & b & wait; }; b'], { stdio: 'ignore' });
let refused = false;
let spawned = 0;
function flood() {
  for (let i = 0; i < 10 && !refused; i++) {
    const c = spawn('/bin/sleep', ['3600'], { stdio: 'ignore' });
    c.on('error', (e) => {
      if (!refused) console.log(`BLOCKED: fork: refused (${e.code}) after ${spawned} spawns`);
      refused = true;
    });
    if (c.pid !== undefined) spawned += 1;
  }
  if (!refused) setTimeout(flood, 20);
}
setTimeout(flood, 300);
setTimeout(() => {
  const n = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).length;
  console.log(`INFO: ${n} processes in the sandbox`);
  if (n > LIMIT + 3) console.log(`ESCAPED: fork: ${n} processes, over the limit of ${LIMIT}`);
}, 1000);
setInterval(() => {}, 1000);

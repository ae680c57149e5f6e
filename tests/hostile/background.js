// Background children that try to outlive the run: detached child processes,
// one keeping the output pipe (it would print after the run ended), one fully
// detached. Both must be gone when the run ends.
'use strict';
const { spawn } = require('child_process');

spawn('/bin/sh', ['-c', 'sleep 1.5; echo "ESCAPED: background: a detached child still runs after the script ended"; sleep 30'],
  { detached: true, stdio: ['ignore', 'inherit', 'inherit'] }).unref();
spawn('/bin/sleep', ['30'], { detached: true, stdio: 'ignore' }).unref();
setTimeout(() => console.log('DONE background'), 200);

// Looks for a terminal to inject into: none of the standard descriptors is a
// terminal and there is no controlling terminal (/dev/tty cannot be opened).
'use strict';
const fs = require('fs');
const tty = require('tty');

for (const fd of [0, 1, 2]) {
  console.log(tty.isatty(fd) ? `ESCAPED: fd ${fd} is a terminal` : `BLOCKED: fd ${fd}: not a terminal`);
}
for (const p of ['/dev/tty', '/dev/console', '/dev/tty0', '/dev/tty1']) {
  try {
    fs.closeSync(fs.openSync(p, 'r+'));
    console.log(`ESCAPED: open ${p}: opened a terminal`);
  } catch (e) {
    console.log(`BLOCKED: open ${p}: ${e.code}`);
  }
}
console.log('DONE tiocsti');

// Mounting from inside the sandbox with mount(8): a tmpfs, a bind of /usr, a
// read-write remount of /, an unmount. All are refused (no capabilities).
'use strict';
const fs = require('fs');
const { spawnSync } = require('child_process');

fs.mkdirSync('/tmp/m', { recursive: true });
const before = fs.readFileSync('/proc/self/mountinfo', 'utf8');
for (const argv of [['mount', '-t', 'tmpfs', 'none', '/tmp/m'], ['mount', '--bind', '/usr', '/tmp/m'],
  ['mount', '-o', 'remount,rw', '/'], ['umount', '/work'], ['umount', '-l', '/usr']]) {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8' });
  const label = argv.join(' ');
  if (r.status === 0) console.log(`ESCAPED: ${label}: succeeded`);
  else console.log(`BLOCKED: ${label}: exit status ${r.status}`);
}
if (fs.readFileSync('/proc/self/mountinfo', 'utf8') !== before) console.log('ESCAPED: mount table changed');
console.log('DONE mount');

// Reach host files through /proc: /proc/self/root, /proc/1/root,
// /proc/self/cwd and inherited descriptors.
'use strict';
const fs = require('fs');

const STORE = '@STORE@';
const MOUNTPOINT = '@MOUNTPOINT@';
const STORE_SECRET = '@STORE_SECRET@';
const HOME_SECRET = '@HOME_SECRET@';

for (const prefix of ['/proc/self/root', '/proc/1/root', '/proc/thread-self/root', '/proc/self/cwd/../..',
  '/proc/1/cwd/../..', '/proc/self/root/proc/1/root', '/work/../../..']) {
  for (const target of [HOME_SECRET, STORE_SECRET, '/etc/shadow']) {
    const p = prefix + target;
    try {
      console.log(`ESCAPED: read ${p}: ${JSON.stringify(fs.readFileSync(p, 'latin1').slice(0, 200))}`);
    } catch (e) {
      console.log(`BLOCKED: read ${p}: ${e.code}`);
    }
  }
}
const own = fs.readdirSync('/').sort().join(',');
for (const p of ['/proc/self/root', '/proc/1/root', '/proc/self/root/..', '/proc/1/cwd/..']) {
  try {
    const seen = fs.readdirSync(p).sort().join(',');
    console.log(seen === own ? `BLOCKED: ${p}: the sandbox's own root` : `ESCAPED: ${p}: another root ${seen}`);
  } catch (e) {
    console.log(`BLOCKED: list ${p}: ${e.code}`);
  }
}
const fine = ['pipe:', 'anon_inode:', 'socket:', '/dev/null', '/work/', '/tmp/', '/proc/', '/dev/pts/', '/dev/ptmx'];
for (const fd of fs.readdirSync('/proc/self/fd')) {
  let target;
  try { target = fs.readlinkSync(`/proc/self/fd/${fd}`); } catch (e) { continue; }
  if (fine.some((f) => target.startsWith(f)) && !target.startsWith(STORE) && !target.startsWith(MOUNTPOINT)) {
    console.log(`INFO: fd ${fd} -> ${target}`);
  } else {
    console.log(`ESCAPED: fd ${fd} -> ${target}: inherited from outside`);
  }
}
console.log('DONE proc_escape');

// Write outside the private /tmp and /work: the system, the store, the
// mountpoint, root's home. Everything is read-only or absent; the test also
// looks on the host for the files this tries to create.
'use strict';
const fs = require('fs');
const path = require('path');

const STORE = '@STORE@';
const MOUNTPOINT = '@MOUNTPOINT@';
const NAME = 'agentbayfs-escape-@TOKEN@';

function attempt(label, func) {
  try {
    func();
  } catch (e) {
    console.log(`BLOCKED: ${label}: ${e.code}`);
    return;
  }
  console.log(`ESCAPED: ${label}: it worked`);
}

for (const d of ['/', '/usr', '/usr/lib', '/usr/bin', '/etc', '/root', STORE, MOUNTPOINT, '/proc', '/work/..']) {
  const p = path.join(d, NAME);
  attempt(`create ${p}`, () => fs.writeFileSync(p, 'written from a sandbox\n', { flag: 'wx' }));
  attempt(`mkdir ${p}.d`, () => fs.mkdirSync(p + '.d'));
}
for (const f of ['/usr/bin/python3', '/etc/ld.so.cache', '/etc/localtime']) {
  attempt(`append to ${f}`, () => fs.closeSync(fs.openSync(f, 'a')));
}
attempt('chmod /usr/bin/env', () => fs.chmodSync('/usr/bin/env', 0o4755));
attempt('rename /usr/bin/env', () => fs.renameSync('/usr/bin/env', '/usr/bin/env.' + NAME));
attempt('unlink /etc/ld.so.cache', () => fs.unlinkSync('/etc/ld.so.cache'));
console.log('DONE write_outside');

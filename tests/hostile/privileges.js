// Looks for privileges: capabilities, root, setuid(0). The sandbox has none.
'use strict';
const fs = require('fs');

const status = fs.readFileSync('/proc/self/status', 'utf8');
for (const cap of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) {
  const value = new RegExp(`^${cap}:\\s*(\\w+)`, 'm').exec(status)[1];
  console.log(/^0+$/.test(value) ? `BLOCKED: ${cap}: no capabilities` : `ESCAPED: ${cap}: ${value}`);
}
console.log(`INFO: uid ${process.getuid()} gid ${process.getgid()}`);
for (const [label, func] of [['setuid(0)', () => process.setuid(0)], ['setgid(0)', () => process.setgid(0)],
  ['setgroups([0])', () => process.setgroups([0])]]) {
  try {
    func();
    console.log(`ESCAPED: ${label}: it worked`);
  } catch (e) {
    console.log(`BLOCKED: ${label}: ${e.code}`);
  }
}
console.log('DONE privileges');

// Huge argument lists and environments for a subprocess. The kernel refuses
// them (E2BIG); the run and the daemon carry on.
'use strict';
const { spawnSync } = require('child_process');

const big = 'x'.repeat(4 << 20);
const manyEnv = {};
for (let i = 0; i < 20000; i++) manyEnv[`V${i}`] = 'b'.repeat(1024);
const cases = [
  ['one 4 MiB argument', [big], undefined],
  ['40000 arguments of 1 KiB', new Array(40000).fill('a'.repeat(1024)), undefined],
  ['a 4 MiB environment variable', [], { BIG: big }],
  ['20000 environment variables', [], manyEnv],
];
for (const [label, args, env] of cases) {
  const r = spawnSync('/bin/true', args, { env, maxBuffer: 1 << 20 });
  if (r.error) console.log(`BLOCKED: ${label}: ${r.error.code}`);
  else console.log(`INFO: ${label}: ran, exit status ${r.status}`);
}
console.log('DONE huge_args');

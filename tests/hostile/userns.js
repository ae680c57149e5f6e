// New namespaces from inside the sandbox with unshare(1): a user namespace
// (which would give back capabilities) and the others. All are refused.
'use strict';
const { spawnSync } = require('child_process');

for (const args of [['-U', 'true'], ['-r', 'id', '-u'], ['-Urm', 'true'], ['-n', 'true'], ['-m', 'true'], ['-p', '-f', 'true']]) {
  const r = spawnSync('unshare', args, { encoding: 'utf8' });
  const label = `unshare ${args.join(' ')}`;
  if (r.status === 0) console.log(`ESCAPED: ${label}: succeeded ${JSON.stringify(r.stdout.trim())}`);
  else console.log(`BLOCKED: ${label}: ${(r.stderr || String(r.error)).trim().split('\n').pop()}`);
}
console.log('DONE userns');

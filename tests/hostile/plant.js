// First half of a pair: leave files in the private /tmp, /work and /dev/shm
// (and a detached process that keeps writing there) for a later run to find.
'use strict';
const fs = require('fs');
const { spawn } = require('child_process');

const TOKEN = '@TOKEN@';
for (const d of ['/tmp', '/work', '/dev/shm', '/dev']) {
  const p = `${d}/agentbayfs-plant-${TOKEN}`;
  try {
    fs.writeFileSync(p, 'left by an earlier run\n');
    console.log(`INFO: planted ${p}`);
  } catch (e) {
    console.log(`INFO: cannot plant ${p}: ${e.code}`);
  }
}
fs.mkdirSync(`/tmp/agentbayfs-plant-dir-${TOKEN}/sub`, { recursive: true });
spawn('/bin/sh', ['-c', `for i in $(seq 300); do echo late > /tmp/agentbayfs-plant-late-${TOKEN}; sleep 0.1; done`],
  { detached: true, stdio: 'ignore' }).unref();
setTimeout(() => console.log('DONE plant'), 300);

// Second half of a pair: look for what an earlier run (plant) left behind.
'use strict';
const fs = require('fs');
const path = require('path');

const TOKEN = '@TOKEN@';
const paths = [`/tmp/agentbayfs-plant-${TOKEN}`, `/work/agentbayfs-plant-${TOKEN}`,
  `/dev/shm/agentbayfs-plant-${TOKEN}`, `/dev/agentbayfs-plant-${TOKEN}`,
  `/tmp/agentbayfs-plant-dir-${TOKEN}`, `/tmp/agentbayfs-plant-late-${TOKEN}`];
for (const p of paths) {
  let there = true;
  try { fs.lstatSync(p); } catch (e) { there = false; }
  console.log(there ? `ESCAPED: ${p}: left by an earlier run is visible` : `BLOCKED: ${p}: not there`);
}
const me = path.basename(process.argv[1]);
const extra = fs.readdirSync('/work').filter((n) => n !== me).concat(fs.readdirSync('/tmp'));
console.log(extra.length ? `ESCAPED: /work and /tmp are not fresh: ${extra}` : 'BLOCKED: fresh /tmp and /work');
console.log('DONE peek');

// Plants symlinks to host paths in its working directory and /tmp, hoping that
// the cleanup after the run follows them. The host paths must be untouched.
'use strict';
const fs = require('fs');
const path = require('path');

const CANARY_DIR = '@CANARY_DIR@';
const CANARY_FILE = '@CANARY_FILE@';
const TOKEN = '@TOKEN@';
const cwd = process.cwd();
console.log(`INFO: working directory ${cwd}`);
function plant(target, link) {
  try {
    fs.symlinkSync(target, link);
    console.log(`INFO: ${link} -> ${target}`);
  } catch (e) {
    console.log(`INFO: cannot plant ${link}: ${e.code}`);
  }
}
for (const [name, target] of [['canary_dir', CANARY_DIR], ['canary_file', CANARY_FILE], ['root', '/root'], ['slash', '/']]) {
  plant(target, path.join(cwd, name));
}
fs.mkdirSync(path.join(cwd, 'deep', 'er'), { recursive: true });
plant(CANARY_DIR, path.join(cwd, 'deep', 'er', 'link'));
plant(CANARY_FILE, path.join(cwd, 'deep', 'file'));
plant(CANARY_DIR, `/tmp/agentbayfs-canary-${TOKEN}`);
console.log(`INFO: canary visible from here: ${fs.existsSync(CANARY_FILE)}`);
console.log('DONE symlink_plant');

// Read outside the sandbox: the store, the mountpoint, root's home, /etc/shadow,
// the daemon's environment and memory, other processes. None of it is there.
'use strict';
const fs = require('fs');
const path = require('path');

const STORE = '@STORE@';
const MOUNTPOINT = '@MOUNTPOINT@';
const STORE_SECRET = '@STORE_SECRET@';
const HOME_SECRET = '@HOME_SECRET@';
const DAEMON_PID = parseInt('@DAEMON_PID@', 10);

function tryRead(p, offset = 0) {
  let fd;
  try {
    fd = fs.openSync(p, 'r');
    const buf = Buffer.alloc(200);
    const n = fs.readSync(fd, buf, 0, 200, offset);
    console.log(`ESCAPED: read ${p}: ${JSON.stringify(buf.subarray(0, n).toString('latin1'))}`);
  } catch (e) {
    console.log(`BLOCKED: read ${p}: ${e.code}`);
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

function tryList(p) {
  try {
    console.log(`ESCAPED: list ${p}: ${fs.readdirSync(p).slice(0, 20)}`);
  } catch (e) {
    console.log(`BLOCKED: list ${p}: ${e.code}`);
  }
}

for (const p of [STORE_SECRET, HOME_SECRET, '/etc/shadow', '/etc/gshadow',
  `/proc/${DAEMON_PID}/environ`, `/proc/${DAEMON_PID}/cmdline`, `/proc/${DAEMON_PID}/root${HOME_SECRET}`]) {
  tryRead(p);
}
tryRead(`/proc/${DAEMON_PID}/mem`, 0x400000);
for (const p of [STORE, path.dirname(STORE), MOUNTPOINT, '/root', '/home', `/proc/${DAEMON_PID}`]) tryList(p);

const host = [];
for (const pid of fs.readdirSync('/proc')) {
  if (!/^\d+$/.test(pid)) continue;
  let cmd;
  try { cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').replace(/\0/g, ' '); } catch (e) { continue; }
  if (cmd.includes('pytest') || cmd.includes('store=') || Number(pid) === DAEMON_PID) host.push([pid, cmd.slice(0, 80)]);
}
if (host.length) console.log(`ESCAPED: host processes visible: ${JSON.stringify(host)}`);
else console.log("BLOCKED: process list: only the sandbox's own processes");

const keys = Object.keys(process.env).sort();
if (keys.some((k) => k.includes('SECRET'))) console.log(`ESCAPED: environment: ${keys}`);
else console.log(`INFO: environment keys ${keys}`);
console.log('DONE read_outside');

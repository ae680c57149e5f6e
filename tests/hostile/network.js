// Network: reach a TCP listener and an abstract unix socket of the host, and
// resolve names. The sandbox has its own loopback only: every attempt fails.
'use strict';
const net = require('net');
const dns = require('dns');
const os = require('os');

const PORT = parseInt('@PORT@', 10);
const ABSTRACT = '@ABSTRACT@';

function connect(opts, label) {
  return new Promise((resolve) => {
    const s = net.connect(opts);
    s.setTimeout(3000);
    s.on('connect', () => {
      s.end('ESCAPED\n');
      console.log(`ESCAPED: ${label}: connected to the host's listener`);
      resolve();
    });
    s.on('timeout', () => { console.log(`BLOCKED: ${label}: timed out`); s.destroy(); resolve(); });
    s.on('error', (e) => { console.log(`BLOCKED: ${label}: ${e.code} ${e.message}`); resolve(); });
  });
}

async function main() {
  await connect({ host: '127.0.0.1', port: PORT }, `tcp 127.0.0.1 port ${PORT}`);
  await connect({ host: '::1', port: PORT }, `tcp ::1 port ${PORT}`);
  await connect({ path: '\0' + ABSTRACT }, 'abstract unix socket');
  for (const host of ['localhost', 'example.com', 'dns.google']) {
    try {
      const addrs = await dns.promises.lookup(host, { all: true });
      const ips = addrs.map((a) => a.address);
      if (ips.every((ip) => ip === '127.0.0.1' || ip === '::1')) console.log(`INFO: resolve ${host}: loopback only ${ips}`);
      else console.log(`ESCAPED: resolve ${host}: ${ips}`);
    } catch (e) {
      console.log(`BLOCKED: resolve ${host}: ${e.code}`);
    }
  }
  try {
    const ips = await dns.promises.resolve4('example.com');
    console.log(`ESCAPED: dns query example.com: ${ips}`);
  } catch (e) {
    console.log(`BLOCKED: dns query example.com: ${e.code}`);
  }
  const names = Object.keys(os.networkInterfaces()).sort();
  if (names.length === 1 && names[0] === 'lo') console.log('BLOCKED: interfaces: only lo');
  else console.log(`ESCAPED: interfaces: ${names}`);
  console.log('DONE network');
}
main();

// Unbounded memory: allocate (and touch) 16 MiB at a time until refused. The
// address space limit (-o memory) ends it.
'use strict';
const LIMIT_MB = parseInt('@MEMORY_MB@', 10);
const chunks = [];
let mb = 0;
for (;;) {
  chunks.push(Buffer.alloc(16 << 20, 1));
  mb += 16;
  if (mb % 64 === 0) console.log(`INFO: ${mb} MiB allocated`);
  if (mb > LIMIT_MB) console.log(`ESCAPED: memory: ${mb} MiB allocated, over the limit of ${LIMIT_MB} MiB`);
}

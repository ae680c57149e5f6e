// Spins on the CPU forever. The time limit (-o timeout) stops the run.
'use strict';
console.log('INFO: spinning');
let n = 0;
for (;;) n += 1;

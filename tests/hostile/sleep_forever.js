// Sleeps forever. The time limit (-o timeout) stops the run.
'use strict';
console.log('INFO: sleeping');
setInterval(() => {}, 3600 * 1000);

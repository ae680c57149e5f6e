// Prints forever. The output limit (-o max_output) stops the run.
'use strict';
const fs = require('fs');
const line = 'y'.repeat(1023) + '\n';
for (;;) fs.writeSync(1, line);

// Ignores every catchable termination signal, then sleeps. The run is still
// stopped at the time limit.
'use strict';
for (const s of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGPIPE', 'SIGALRM', 'SIGXCPU']) {
  process.on(s, () => console.log(`INFO: ignored ${s}`));
}
console.log('INFO: ignoring SIGTERM');
setInterval(() => {}, 3600 * 1000);

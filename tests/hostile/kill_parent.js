// Kills its parent (the sandbox's init), then every process it may signal
// (kill(-1, SIGKILL)). Only the sandbox's processes are reachable: the daemon
// and the host's processes of the same uid live on.
'use strict';
function kill(label, pid) {
  try {
    process.kill(pid, 'SIGKILL');
    console.log(`INFO: kill(${label}, SIGKILL) returned`);
  } catch (e) {
    console.log(`BLOCKED: kill ${label}: ${e.code}`);
  }
}
console.log(`INFO: parent is pid ${process.ppid}`);
kill('parent', process.ppid);
kill('pid 1', 1);
setTimeout(() => {
  console.log(`INFO: still running, parent now ${process.ppid}`);
  kill('-1', -1);
  setTimeout(() => {
    console.log('BLOCKED: kill: the script is still running');
    console.log('DONE kill_parent');
  }, 300);
}, 300);

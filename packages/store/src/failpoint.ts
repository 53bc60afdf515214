/**
 * Fault injection for the crash tests: when the environment variable ORCH_FAILPOINT names this
 * point, the process kills itself with SIGKILL right here, exactly as `kill -9` at that moment
 * would. Costs one environment lookup otherwise. Points are named `<operation>:<moment>`.
 */
export function failpoint(name: string): void {
  if (process.env.ORCH_FAILPOINT === name) process.kill(process.pid, 'SIGKILL');
}

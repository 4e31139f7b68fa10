/**
 * Runs the user's command as a child: stdio inherited, SIGINT/SIGTERM/SIGHUP forwarded, and its outcome
 * turned into an exit status the way a shell does (its code, or 128+N when killed by signal N).
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import { BoxerError } from '../util/errors';
import { SHIM_REPORT_WAIT_MS, type VirtualNetwork } from '../vnet/service';
import { chooseIntercept, type InterceptChoice } from './intercept';
import { logger } from '../util/log';

const log = logger('run');

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

export function runCommand(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: 'inherit', env });
    const forward = (sig: NodeJS.Signals) => child.kill(sig);
    for (const s of FORWARDED) process.on(s, forward);
    const cleanup = () => FORWARDED.forEach((s) => process.off(s, forward));
    child.on('error', (e: NodeJS.ErrnoException) => {
      cleanup();
      reject(new BoxerError('USAGE', `cannot start ${cmd}: ${e.code === 'ENOENT' ? 'no such command (check PATH)' : e.message}`));
    });
    child.on('exit', (code, signal) => {
      cleanup();
      if (signal) resolve(128 + (os.constants.signals[signal] ?? 0));
      else resolve(code ?? 0);
    });
  });
}

/**
 * Runs a member's command on the virtual network (when `vnet` is given): with the shim preloaded, or under the
 * seccomp supervisor for a program the shim cannot see (intercept.ts decides; the supervisor itself says on
 * stderr when seccomp user notification is not available). Says so clearly on stderr when a program meant for
 * the shim did not load it (a setuid program, an unreadable library): it then runs without the virtual
 * network, and the user must know.
 */
export async function runMemberCommand(cmd: string[], env: NodeJS.ProcessEnv, vnet: VirtualNetwork | null, intercept: InterceptChoice = 'auto'): Promise<number> {
  if (vnet) {
    const { mode, why } = chooseIntercept(intercept, cmd[0], env.PATH);
    log.debug('how the program gets the virtual network', { cmd: cmd[0], mode, why });
    if (mode === 'seccomp') return runCommand(vnet.seccompPath, ['--', ...cmd], vnet.env(env, 'seccomp'));
  }
  let done = false;
  const running = runCommand(cmd[0], cmd.slice(1), vnet ? vnet.env(env) : env).finally(() => (done = true));
  if (vnet) {
    void vnet.shimReported().then((loaded) => {
      if (!loaded && !done) {
        process.stderr.write(
          `boxer: ${cmd[0]} did not load the Boxer shim within ${SHIM_REPORT_WAIT_MS / 1000} s (a setuid program, an unreadable library, or a wrapper that execs a Go or static program: --intercept seccomp): it runs WITHOUT the virtual network\n`,
        );
      }
    });
  }
  return running;
}

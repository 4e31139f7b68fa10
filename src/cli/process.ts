/**
 * Runs the user's command as a child: stdio inherited, SIGINT/SIGTERM/SIGHUP forwarded, and its outcome
 * turned into an exit status the way a shell does (its code, or 128+N when killed by signal N).
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import { BoxerError } from '../util/errors';
import type { VirtualNetwork } from '../vnet/service';
import { SHIM_REPORT_WAIT_MS } from '../constants';

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
 * Runs a member's command with the shim preloaded (when `vnet` is given), and says so clearly on stderr when the
 * program did not load it (a static binary, a setuid program, an unreadable library): it then runs without
 * the virtual network, and the user must know.
 */
export async function runMemberCommand(cmd: string[], env: NodeJS.ProcessEnv, vnet: VirtualNetwork | null): Promise<number> {
  let done = false;
  const running = runCommand(cmd[0], cmd.slice(1), vnet ? vnet.env(env) : env).finally(() => (done = true));
  if (vnet) {
    void vnet.shimReported().then((loaded) => {
      if (!loaded && !done) {
        process.stderr.write(
          `boxer: ${cmd[0]} did not load the Boxer shim within ${SHIM_REPORT_WAIT_MS / 1000} s (a static binary such as a Go program, a setuid program, or an unreadable library?): it runs WITHOUT the virtual network\n`,
        );
      }
    });
  }
  return running;
}

/**
 * Runs the user's command as a child: stdio inherited, SIGINT/SIGTERM/SIGHUP forwarded, and its outcome
 * turned into an exit status the way a shell does (its code, or 128+N when killed by signal N).
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import { BoxerError } from '../util/errors';

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

/**
 * Runs the user's command as a child in its own process group: stdio inherited, SIGINT/SIGTERM/SIGHUP
 * forwarded to the group, and its outcome turned into an exit status the way a shell does (its code, or 128+N
 * when killed by signal N). A watchdog (a shell blocked reading a pipe only the agent holds) sends the group
 * SIGTERM when the agent dies without cleaning up (kill -9, a crash): the program is never left running
 * without its network, unnoticed. Also: the signal latch used before the command runs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { BoxerError } from '../util/errors';
import { logger } from '../util/log';
import type { VirtualNetwork } from '../ipc/virtual-network';
import { SHIM_REPORT_WAIT_MS } from '../constants';
import { chooseIntercept, type InterceptChoice } from './intercept';

const log = logger('process');
const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

/** The exit status a shell gives for death by `sig`: 128 + its number. */
export function signalStatus(sig: NodeJS.Signals): number {
  return 128 + (os.constants.signals[sig] ?? 0);
}

/**
 * Catches SIGINT/SIGTERM/SIGHUP from its creation until dispose() (the join and the barrier), so that a signal
 * then ends `boxer run` through its orderly leave instead of Node's default of dying on the spot.
 */
export class SignalLatch {
  first: NodeJS.Signals | null = null;
  readonly caught: Promise<NodeJS.Signals>;
  private resolve!: (s: NodeJS.Signals) => void;
  private readonly handler = (s: NodeJS.Signals) => {
    if (this.first) return;
    this.first = s;
    this.resolve(s);
  };

  constructor() {
    this.caught = new Promise((r) => (this.resolve = r));
    for (const s of FORWARDED) process.on(s, this.handler);
  }

  dispose(): void {
    for (const s of FORWARDED) process.off(s, this.handler);
  }
}

/** Resolves when `p` settles or after `ms`, whichever is first (then `late` is called): shutdown never hangs. */
export function withDeadline(p: Promise<unknown>, ms: number, late: () => void): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      late();
      resolve();
    }, ms);
    p.catch(() => undefined).finally(() => {
      clearTimeout(t);
      resolve();
    });
  });
}

/**
 * The watchdog of process group `pgid`: its stdin is a pipe whose only writer is this process (Node opens it
 * close-on-exec, so the command does not inherit it). When this process dies by any means the pipe reaches
 * end of file and the shell signals the group. dash's `kill` takes `-PGID` for a group.
 */
function startWatchdog(pgid: number): ChildProcess | null {
  try {
    const w = spawn('/bin/sh', ['-c', 'read _ ; kill -TERM -"$0" 2>/dev/null', String(pgid)], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
    w.on('error', (e) => log.warn('cannot start the watchdog of the command (it will not be told if the agent dies)', { reason: e.message }));
    w.unref();
    (w.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    return w;
  } catch (e) {
    log.warn('cannot start the watchdog of the command (it will not be told if the agent dies)', { reason: (e as Error).message });
    return null;
  }
}

/** A started command: its pid (= its process group), its end, and a way to signal the whole group. */
export interface CommandHandle {
  pid: number;
  /** Resolves when it ends: its exit code, or the signal that killed it. */
  ended: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Signals its process group (what it started too); false when the group is gone. */
  kill(sig: NodeJS.Signals): boolean;
}

export interface StartOptions {
  /** Working directory (default: ours). */
  cwd?: string;
  /** Forward SIGINT/SIGTERM/SIGHUP received by this process to the group (boxer run, boxer seed -- CMD). */
  forwardSignals?: boolean;
}

/** Starts a command in its own process group (see the file comment); rejects when it cannot start. */
export function startCommand(cmd: string, args: string[], env: NodeJS.ProcessEnv, opts: StartOptions = {}): Promise<CommandHandle> {
  return new Promise((resolve, reject) => {
    // detached: the command leads its own process group (setsid), so the group can be signalled as a whole
    // by us and by the watchdog without touching the agent.
    const child = spawn(cmd, args, { stdio: 'inherit', env, cwd: opts.cwd, detached: true });
    const watchdog = child.pid ? startWatchdog(child.pid) : null;
    const kill = (sig: NodeJS.Signals) => {
      try {
        process.kill(-child.pid!, sig);
        return true;
      } catch {
        return child.kill(sig); // the group is gone: the child alone, if still there
      }
    };
    const forwarded = opts.forwardSignals === false ? [] : FORWARDED;
    for (const s of forwarded) process.on(s, kill);
    const cleanup = () => {
      forwarded.forEach((s) => process.off(s, kill));
      watchdog?.kill('SIGKILL');
    };
    const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
      child.on('exit', (code, signal) => {
        cleanup();
        done({ code: signal ? null : code ?? 0, signal });
      }),
    );
    child.on('error', (e: NodeJS.ErrnoException) => {
      cleanup();
      reject(new BoxerError('USAGE', `cannot start ${cmd}: ${e.code === 'ENOENT' ? 'no such command (check PATH and the working directory)' : e.message}`));
    });
    child.on('spawn', () => resolve({ pid: child.pid!, ended, kill }));
  });
}

export async function runCommand(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { code, signal } = await (await startCommand(cmd, args, env)).ended;
  return signal ? signalStatus(signal) : code ?? 0;
}

/**
 * Starts a member's command on the virtual network (when `vnet` is given): with the shim preloaded, or under the
 * seccomp supervisor for a program the shim cannot see (intercept.ts decides; the supervisor itself says on
 * stderr when seccomp user notification is not available). Says so clearly on stderr when a program meant for
 * the shim did not load it (a setuid program, an unreadable library): it then runs without the virtual
 * network, and the user must know.
 */
export async function startMemberCommand(
  cmd: string[],
  env: NodeJS.ProcessEnv,
  vnet: VirtualNetwork | null,
  intercept: InterceptChoice = 'auto',
  opts: StartOptions = {},
): Promise<CommandHandle> {
  if (vnet) {
    const { mode, why } = chooseIntercept(intercept, cmd[0], env.PATH);
    log.debug('how the program gets the virtual network', { cmd: cmd[0], mode, why });
    if (mode === 'seccomp') return startCommand(vnet.seccompPath, ['--', ...cmd], vnet.env(env, 'seccomp'), opts);
  }
  const handle = await startCommand(cmd[0], cmd.slice(1), vnet ? vnet.env(env) : env, opts);
  let done = false;
  void handle.ended.finally(() => (done = true));
  if (vnet) {
    void vnet.shimReported().then((loaded) => {
      if (!loaded && !done) {
        process.stderr.write(
          `boxer: ${cmd[0]} did not load the Boxer shim within ${SHIM_REPORT_WAIT_MS / 1000} s (a setuid program, an unreadable library, or a wrapper that execs a Go or static program: --intercept seccomp): it runs WITHOUT the virtual network\n`,
        );
      }
    });
  }
  return handle;
}

/** startMemberCommand to its end, as an exit status (its code, or 128+N when killed by signal N). */
export async function runMemberCommand(cmd: string[], env: NodeJS.ProcessEnv, vnet: VirtualNetwork | null, intercept: InterceptChoice = 'auto'): Promise<number> {
  const { code, signal } = await (await startMemberCommand(cmd, env, vnet, intercept)).ended;
  return signal ? signalStatus(signal) : code ?? 0;
}

/**
 * `boxer run`: join, wait for the barrier, run CMD with its place in the network in its environment, leave, and
 * exit with CMD's status. The flow is the member session's (src/cli/session.ts), shared with the Lambda handler;
 * this file adds the command line's part: the secret from --secret-file, progress on stderr, and signals (a
 * signal before CMD runs ends `boxer run` through its orderly leave with 128+N; once CMD runs, signals go to it).
 */
import { readSecret } from '../secret';
import { MemberSession, SessionStopped } from '../session';
import { SignalLatch, signalStatus } from '../process';
import type { InterceptChoice } from '../intercept';

export interface RunArgs {
  seed: string;
  nodes?: number;
  name?: string;
  services: string[];
  secretFile?: string;
  joinTimeoutMs: number;
  /** Load the preload shim into CMD (default); false: CMD runs without the virtual network. */
  shim?: boolean;
  /** How CMD gets the virtual network (cli/intercept.ts); default auto. */
  intercept?: InterceptChoice;
  /** The seed's discovery port (default: seed port + 1). */
  discoveryPort?: number;
  cmd: string[];
  /** Drain period of a member with services before its command is stopped (ms; default DRAIN_GRACE_MS). */
  drainGraceMs?: number;
}

export async function runCommandCli(a: RunArgs): Promise<void> {
  const session = new MemberSession({
    seed: a.seed,
    nodes: a.nodes,
    name: a.name,
    services: a.services,
    secret: () => readSecret(a.secretFile),
    joinTimeoutMs: a.joinTimeoutMs,
    shim: a.shim,
    intercept: a.intercept,
    discoveryPort: a.discoveryPort,
    cmd: a.cmd,
    env: process.env,
    // A member providing services drains before its command gets the signal (session.stop, below).
    forwardSignals: a.services.length === 0 || a.drainGraceMs === 0,
    drainGraceMs: a.drainGraceMs,
    progress: (have, want) => {
      if (have < want) process.stderr.write(`boxer: waiting for members ${have}/${want}\n`);
    },
  });
  // From here until the command runs, a signal ends us through leave() with 128+N (143 for SIGTERM).
  const signals = new SignalLatch();
  void signals.caught.then((sig) => session.stop(sig));
  try {
    await session.join();
    await session.waitForMembers();
  } catch (e) {
    signals.dispose();
    if (e instanceof SessionStopped && signals.first) {
      await session.leave(null);
      process.exit(signalStatus(signals.first));
    }
    await session.leave(null);
    throw e;
  }
  signals.dispose(); // from here on signals are forwarded to the command's process group, or drain first:
  const drainFirst = !(a.services.length === 0 || a.drainGraceMs === 0);
  const onSignal = (sig: NodeJS.Signals) => (session.stopCause ? session.hurry() : session.stop(sig));
  if (drainFirst) for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, onSignal);
  let status: number;
  try {
    const outcome = await session.runCommand();
    status = outcome.status;
    await session.leave(outcome);
  } finally {
    await session.leave();
  }
  process.exit(status);
}

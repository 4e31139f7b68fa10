/** `boxer run`: join, wait for the barrier, run CMD with its place in the network in its environment. */
import { readSecret } from '../secret';
import { MemberSession, SessionStopped } from '../session';

export interface RunArgs {
  seed: string;
  nodes?: number;
  name?: string;
  services: string[];
  secretFile?: string;
  joinTimeoutMs: number;
  /** Load the preload shim into CMD (default); false: CMD runs without the virtual network. */
  shim?: boolean;
  /** The seed's discovery port (default: seed port + 1). */
  discoveryPort?: number;
  cmd: string[];
}

/** Exit status when Ctrl-C or SIGTERM ends the wait for members (as a shell reports SIGINT). */
const EXIT_INTERRUPTED = 130;

export async function runCommandCli(a: RunArgs): Promise<void> {
  const session = new MemberSession({
    seed: a.seed,
    nodes: a.nodes,
    name: a.name,
    services: a.services,
    secret: () => readSecret(a.secretFile),
    joinTimeoutMs: a.joinTimeoutMs,
    shim: a.shim,
    discoveryPort: a.discoveryPort,
    cmd: a.cmd,
    env: process.env,
    forwardSignals: ['SIGINT', 'SIGTERM', 'SIGHUP'],
    progress: (have, want) => {
      if (have < want) process.stderr.write(`boxer: waiting for members ${have}/${want}\n`);
    },
  });
  await session.join();
  try {
    const onSignal = () => session.stop('interrupted');
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
      await session.waitForMembers();
    } catch (e) {
      if (e instanceof SessionStopped) {
        await session.leave(null);
        process.exit(EXIT_INTERRUPTED);
      }
      throw e;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    const outcome = await session.runCommand();
    await session.leave(outcome);
    process.exit(outcome.status);
  } finally {
    await session.leave();
  }
}

/** `boxer run`: join, wait for the barrier, run CMD with its place in the network in its environment. */
import { Agent, localPortRange } from '../../control/agent';
import { parseHostPort, networkKeys } from './common';
import { readSecret } from '../secret';
import { checkName } from '../../control/names';
import { LocalMember, type MemberView } from '../member';
import { runMemberCommand, SignalLatch, signalStatus, withDeadline } from '../process';
import type { InterceptChoice } from '../intercept';
import { memberKey } from '../member-key';
import { BoxerError, EXIT } from '../../util/errors';
import { capacity, parseCidr } from '../../control/addresses';
import { JOIN_SIGNAL_GRACE_MS, MAX_JOIN_TIMEOUT_S, SHUTDOWN_MAX_MS } from '../../constants';
import { logger } from '../../util/log';
import { nativeIo } from '../../traversal/io';
import { pingReply } from '../member';
import { VirtualNetwork, agentHost, loadNative } from '../../vnet/service';
import { PunchPorts } from '../../vnet/ports';

const log = logger('run');

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
}

export async function runCommandCli(a: RunArgs): Promise<void> {
  if (a.cmd.length === 0) throw new BoxerError('USAGE', 'nothing to run: give the command after --, e.g. boxer run --seed HOST:PORT -- ./start.sh');
  const { host, port } = parseHostPort(a.seed, '--seed');
  if (a.name !== undefined) checkName(a.name, '--name');
  a.services.forEach((s) => checkName(s, '--service'));
  const maxNodes = capacity(parseCidr('0.0.0.0/8'));
  if (a.nodes !== undefined && !(Number.isInteger(a.nodes) && a.nodes >= 1 && a.nodes <= maxNodes)) {
    throw new BoxerError('USAGE', `--nodes ${a.nodes}: expected a whole number of members, at least 1 and at most ${maxNodes} (the largest network, a /8)`);
  }
  if (!(Number.isFinite(a.joinTimeoutMs) && a.joinTimeoutMs > 0 && a.joinTimeoutMs <= MAX_JOIN_TIMEOUT_S * 1000)) {
    throw new BoxerError('USAGE', `--join-timeout: expected a number of seconds greater than 0 and at most ${MAX_JOIN_TIMEOUT_S}`);
  }
  const secret = readSecret(a.secretFile);
  const { psk, networkId, keys: fresh } = await networkKeys(secret);
  // A named member keeps its key, so that restarted under its name it gets its id and address back.
  const held = a.name ? memberKey(networkId, a.name) : null;
  const keys = held?.keys ?? fresh;
  if (held) process.once('exit', () => held.release());
  // From here until the command runs, a signal ends us through leave() with 128+N (143 for SIGTERM).
  const signals = new SignalLatch();
  // Ports for the far ends of punched program connections, held before we announce them at join.
  const punchPorts = a.shim === false ? null : PunchPorts.reserve(loadNative(), localPortRange());
  const agent = new Agent({
    punchPorts: punchPorts?.range,
    seedHost: host,
    seedPort: port,
    psk,
    keys,
    name: a.name,
    services: a.services,
    joinTimeoutMs: a.joinTimeoutMs,
    traversal: { io: nativeIo, discoveryPort: a.discoveryPort ?? envPort(process.env.BOXER_DISCOVERY_PORT) },
  });
  let vnet: VirtualNetwork | null = null;
  let member: LocalMember | null = null;
  let leaving: Promise<void> | null = null;
  const leave = (): Promise<void> =>
    (leaving ??= withDeadline(
      (async () => {
        await agent.leave();
        await vnet?.close();
        punchPorts?.close();
        await member?.close();
      })(),
      SHUTDOWN_MAX_MS,
      () => log.warn('leaving took too long; exiting anyway', { afterMs: SHUTDOWN_MAX_MS }),
    ));
  const quit = async (code: number): Promise<never> => {
    signals.dispose();
    await leave();
    process.exit(code);
  };

  log.info('joining', { seed: `${host}:${port}`, joinTimeoutS: a.joinTimeoutMs / 1000 });
  const joining = agent.join();
  let self: Awaited<typeof joining>;
  try {
    const first = await Promise.race([joining.then((s) => ({ s })), signals.caught.then((sig) => ({ sig }))]);
    if ('sig' in first) {
      // A join under way gets a moment to finish, so that the seed hears `leave` rather than a silence.
      await withDeadline(joining, JOIN_SIGNAL_GRACE_MS, () => undefined);
      return quit(signalStatus(first.sig));
    }
    self = first.s;
  } catch (e) {
    signals.dispose();
    punchPorts?.close();
    throw e;
  }
  const room = capacity(parseCidr(self.network));
  if (a.nodes !== undefined && a.nodes > room) {
    process.stderr.write(`boxer: --nodes ${a.nodes}: the network ${self.network} holds at most ${room} members\n`);
    return quit(EXIT.USAGE);
  }
  vnet = a.shim === false ? null : new VirtualNetwork(agentHost(agent));
  const view: MemberView = {
    get self() {
      return agent.self;
    },
    list: () => agent.list(),
    on: (ev, fn) => agent.on(ev, fn),
    statusExtra: () => ({ role: 'member', seedConnected: agent.seedConnected, nat: agent.mapping.kind, links: agent.links(), vnet: vnet?.status() ?? null }),
    handle: (req) => {
      if (req.op === 'ping') return pingReply(agent, req);
      // For tests: drop every peer link, so that the next ping opens a new one (e.g. once the seed is gone).
      if (req.op === 'close-links') return Promise.resolve({ ok: true, closed: agent.peers?.closeLinks() ?? 0 });
      return undefined;
    },
  };
  member = new LocalMember(view, `${host}:${port}`);
  await member.start();
  await vnet?.start();

  if (a.nodes && a.nodes > 1) {
    let last = -1;
    const abort = new AbortController();
    void signals.caught.then(() => abort.abort());
    try {
      await agent.waitForMembers(
        a.nodes,
        (have) => {
          if (have !== last && have < a.nodes!) process.stderr.write(`boxer: waiting for members ${have}/${a.nodes}\n`);
          last = have;
        },
        abort.signal,
      );
    } catch {
      return quit(signalStatus(signals.first ?? 'SIGINT'));
    }
  }
  if (signals.first) return quit(signalStatus(signals.first));
  signals.dispose(); // from here on signals are forwarded to the command (runCommand)
  log.info('starting the command', { id: self.id, name: self.name, addr: self.addr, cmd: a.cmd.join(' ') });
  let code: number;
  try {
    code = await runMemberCommand(a.cmd, member.env(process.env), vnet, a.intercept);
  } catch (e) {
    await leave();
    throw e;
  }
  await leave();
  process.exit(code);
}

function envPort(v: string | undefined): number | undefined {
  const n = Number(v);
  return v && Number.isInteger(n) && n > 0 && n < 65536 ? n : undefined;
}

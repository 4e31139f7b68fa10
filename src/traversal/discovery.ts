/**
 * NAT behaviour discovery at join (docs/nat-traversal.md, "Discovery").
 *
 * The seed reflects the external endpoint it sees a connection come from, on two ports: its control port and
 * its discovery port (control port + DISCOVERY_PORT_OFFSET unless `--discovery-port`). The agent connects to
 * both from the SAME local port L (SO_REUSEADDR + SO_REUSEPORT) and compares:
 *
 * - reflected port == L on both                  -> `preserving`
 * - same reflected port on both, != L            -> `translating`: the mapping is inferred (port XOR and
 *   offset), then checked with a second probe from another local port; a failed check -> `random`
 * - different reflected ports                    -> `random` (endpoint-dependent mapping: only relays help)
 *
 * Independently, the seed tries to connect back to the agent's peer-link listener at the observed external
 * address (a connect-back test, not an address comparison: EC2 hosts sit behind a 1:1 NAT); success, with the
 * agent's key proved by a handshake, makes the agent `open`.
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { Channel } from '../channel/channel';
import type { KeyPair } from '../crypto/keys';
import type { Endpoint, Message, NatKind } from '../wire/messages';
import { CONNECT_BACK_TIMEOUT_MS, HANDSHAKE_TIMEOUT_MS, PROBE_TIMEOUT_MS } from '../constants';
import { BoxerError } from '../util/errors';
import { logger } from '../util/log';
import type { PeerIo } from './io';

const log = logger('discovery');

/** What an agent knows about its own NAT: enough to predict the external endpoint of any local port. */
export interface NatMapping {
  kind: NatKind;
  /** External address (the seed's view). */
  ip: string | null;
  /** For `translating`: external port = local port XOR xor ... */
  xor: number | null;
  /** ... or external port = local port + offset, whichever the second probe confirmed. */
  offset: number | null;
}

export const UNKNOWN_MAPPING: NatMapping = { kind: 'unknown', ip: null, xor: null, offset: null };

/** Classifies from the two reflections of local port `local`; `open` from the connect-back test. */
export function classify(local: number, control: Endpoint, probe: Endpoint, open: boolean): NatMapping {
  const ip = probe.ip;
  if (open) return { kind: 'open', ip, xor: null, offset: null };
  if (control.port !== probe.port || control.ip !== probe.ip) return { kind: 'random', ip, xor: null, offset: null };
  if (probe.port === local) return { kind: 'preserving', ip, xor: null, offset: null };
  return { kind: 'translating', ip, xor: (local ^ probe.port) & 0xffff, offset: probe.port - local };
}

/** Given a second reflection (local2 -> seen2), keeps the mapping function it confirms; null: none does. */
export function confirmTranslation(m: NatMapping, local2: number, seen2: Endpoint): NatMapping | null {
  if (seen2.ip !== m.ip) return null;
  if (m.xor !== null && (local2 ^ m.xor) === seen2.port) return { ...m, offset: null };
  if (m.offset !== null && local2 + m.offset === seen2.port) return { ...m, xor: null };
  return null;
}

/** This agent's external endpoint for a local port, or null when it cannot be predicted (random, unknown). */
export function predictEndpoint(m: NatMapping, localPort: number): Endpoint | null {
  if (!m.ip) return null;
  switch (m.kind) {
    case 'open':
    case 'preserving':
      return { ip: m.ip, port: localPort };
    case 'translating': {
      const port = m.xor !== null ? localPort ^ m.xor : localPort + (m.offset ?? 0);
      return port > 0 && port < 65536 ? { ip: m.ip, port } : null;
    }
    default:
      return null;
  }
}

/** Waits for the first message on a started channel, with a timeout. */
export function firstMessage(ch: Channel, timeoutMs: number): Promise<Message> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      cleanup();
      reject(new Error(`no answer from ${ch.peer} within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMsg = (m: Message) => {
      cleanup();
      resolve(m);
    };
    const onClose = () => {
      cleanup();
      reject(new Error(`${ch.peer} closed the connection`));
    };
    const cleanup = () => {
      clearTimeout(t);
      ch.off('message', onMsg);
      ch.off('close', onClose);
    };
    ch.on('message', onMsg);
    ch.on('close', onClose);
  });
}

export interface ProbeOptions {
  io: PeerIo;
  psk: Uint8Array;
  keys: KeyPair;
  seed: Endpoint;
}

/** One probe to the discovery port from `fromPort` (0: fresh). */
export async function probe(o: ProbeOptions, fromPort: number, listen: number): Promise<{ local: number; observed: Endpoint; open: boolean }> {
  const { stream, local } = await o.io.dial(o.seed, PROBE_TIMEOUT_MS, fromPort);
  const ch = await Channel.initiate(stream, { psk: o.psk, keys: o.keys, peer: `discovery ${o.seed.ip}:${o.seed.port}`, handshakeTimeoutMs: PROBE_TIMEOUT_MS });
  try {
    const answer = firstMessage(ch, PROBE_TIMEOUT_MS + CONNECT_BACK_TIMEOUT_MS + HANDSHAKE_TIMEOUT_MS);
    ch.start();
    ch.sendMessage({ t: 'probe', listen });
    const m = await answer;
    if (m.t !== 'reflect') throw new Error(`expected reflect from the discovery port, got ${m.t}`);
    return { local: local.port, observed: m.observed, open: m.open };
  } finally {
    ch.close();
  }
}

/**
 * The agent's side, once the control connection from local port `controlLocal` has been reflected as
 * `controlObserved`. Never throws: a failed probe gives `unknown` (links then fall back to relays).
 */
export async function discover(o: ProbeOptions, controlLocal: number, controlObserved: Endpoint, listen: number): Promise<NatMapping> {
  try {
    const p1 = await probe(o, controlLocal, listen);
    let m = classify(controlLocal, controlObserved, p1.observed, p1.open);
    if (m.kind === 'translating') {
      const p2 = await probe(o, 0, 0);
      m = confirmTranslation(m, p2.local, p2.observed) ?? { ...m, kind: 'random', xor: null, offset: null };
    }
    log.info('NAT discovered', { nat: m.kind, ext: m.ip, xor: m.xor ?? undefined, offset: m.offset ?? undefined, local: controlLocal });
    return m;
  } catch (e) {
    log.warn('NAT discovery failed; links to this member will be relayed', { seed: `${o.seed.ip}:${o.seed.port}`, reason: (e as Error).message });
    return { ...UNKNOWN_MAPPING, ip: controlObserved.ip };
  }
}

// ---- the seed's side ------------------------------------------------------------------------------------

export type ConnectBack = (to: Endpoint, timeoutMs: number) => Promise<Duplex>;

/** Plain TCP with a timeout: the seed needs no special socket for the connect-back test. */
export const tcpConnectBack: ConnectBack = (to, timeoutMs) =>
  new Promise((resolve, reject) => {
    const sock = net.connect({ host: to.ip, port: to.port });
    const t = setTimeout(() => {
      sock.destroy();
      reject(new Error('timed out'));
    }, timeoutMs);
    sock.once('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    sock.once('connect', () => {
      clearTimeout(t);
      sock.removeAllListeners('error');
      sock.on('error', () => {});
      resolve(sock);
    });
  });

export interface DiscoveryServerOptions {
  psk: Uint8Array;
  keys: KeyPair;
  connectBack?: ConnectBack;
  /**
   * The connect-back's SYN timeout (default CONNECT_BACK_TIMEOUT_MS). Longer only where the seed shares one
   * event loop with hundreds of agents (tests): a stalled loop, not a dropped SYN, would then decide.
   */
  connectBackTimeoutMs?: number;
}

/**
 * Answers one `probe` per connection with a `reflect` (after the connect-back test when the probe names a
 * listen port), then closes. Only agents that know the network secret get an answer.
 */
export class DiscoveryServer {
  private server: net.Server | null = null;
  private readonly sockets = new Set<Duplex>();
  private readonly connectBack: ConnectBack;

  constructor(private readonly opts: DiscoveryServerOptions) {
    this.connectBack = opts.connectBack ?? tcpConnectBack;
  }

  listen(host: string, port: number): Promise<net.AddressInfo> {
    return new Promise((resolve, reject) => {
      const server = net.createServer((sock) => {
        sock.setNoDelay(true);
        this.accept(sock, { ip: (sock.remoteAddress ?? '0.0.0.0').replace(/^::ffff:/, ''), port: sock.remotePort ?? 0 });
      });
      server.once('error', (e: NodeJS.ErrnoException) =>
        reject(new BoxerError('USAGE', `cannot listen for NAT discovery on ${host}:${port}: ${e.code ?? e.message} (choose another with --discovery-port)`)),
      );
      server.listen(port, host, () => {
        this.server = server;
        resolve(server.address() as net.AddressInfo);
      });
    });
  }

  accept(stream: Duplex, remote: Endpoint): void {
    this.sockets.add(stream);
    stream.on('close', () => this.sockets.delete(stream));
    stream.on('error', () => {});
    const peer = `${remote.ip}:${remote.port}`;
    Channel.respond(stream, { psk: this.opts.psk, keys: this.opts.keys, peer })
      .then(async (ch) => {
        const first = firstMessage(ch, HANDSHAKE_TIMEOUT_MS);
        ch.start();
        const m = await first;
        if (m.t !== 'probe') return ch.close(`expected probe on the discovery port, got ${m.t}`);
        const open = m.listen > 0 ? await this.testConnectBack({ ip: remote.ip, port: m.listen }, ch.remoteStatic) : false;
        ch.sendMessage({ t: 'reflect', observed: remote, open });
        setTimeout(() => ch.close(), 1_000).unref();
      })
      .catch((e: Error) => log.info('discovery probe failed', { peer, reason: e.message }));
  }

  /** Connects back to `to`; open only if the answering side proves the probing agent's key. */
  async testConnectBack(to: Endpoint, key: Uint8Array): Promise<boolean> {
    let stream: Duplex;
    try {
      stream = await this.connectBack(to, this.opts.connectBackTimeoutMs ?? CONNECT_BACK_TIMEOUT_MS);
    } catch {
      return false;
    }
    try {
      // The short timeout is for the SYN (a NAT drops it silently); once connected, the usual handshake bound.
      const ch = await Channel.initiate(stream, { psk: this.opts.psk, keys: this.opts.keys, peer: `connect-back ${to.ip}:${to.port}` });
      ch.start();
      ch.sendMessage({ t: 'hello', id: 0, path: 'probe', home: false });
      const same = Buffer.compare(Buffer.from(ch.remoteStatic), Buffer.from(key)) === 0;
      setTimeout(() => ch.close(), 100).unref();
      return same;
    } catch {
      stream.destroy();
      return false;
    }
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    if (this.server) await new Promise<void>((r) => this.server!.close(() => r()));
  }
}

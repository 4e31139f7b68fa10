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
 * agent's key proved by a handshake, makes the agent `open`. The agent does not wait for it: it joins with the
 * kind the ports gave and, when the connect-back comes through, tells the seed (`nat`), which re-announces it.
 *
 * The first probe starts beside the control connection's handshake, from its local port: that port is the
 * control connection's own (bound before its connect, io.ts OWN_PORT), so no other socket can hold it.
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

/** A probe's answer: the reflection of its local port, and (asked with `listen`) the connect-back's outcome. */
export interface ProbeAnswer {
  local: number;
  observed: Endpoint;
  /** Whether the seed's connect-back reached our listener (false at once when not asked for). */
  open: Promise<boolean>;
}

/**
 * One probe to the discovery port from `fromPort` (0: fresh). The seed reflects at once; with `listen` it
 * then tries the connect-back and sends a second `reflect` (open) only when it came through, closing the
 * probe's connection otherwise: the mapping is known one round trip after the handshake, the connect-back's
 * outcome later (up to CONNECT_BACK_TIMEOUT_MS for the SYN a NAT drops) without anyone waiting for it.
 */
export async function probe(o: ProbeOptions, fromPort: number, listen: number): Promise<ProbeAnswer> {
  const { stream, local } = await o.io.dial(o.seed, PROBE_TIMEOUT_MS, fromPort);
  // The handshake runs beside the control connection's: the same bound (HANDSHAKE_TIMEOUT_MS, Channel's default).
  const ch = await Channel.initiate(stream, { psk: o.psk, keys: o.keys, peer: `discovery ${o.seed.ip}:${o.seed.port}` });
  // Both listeners before start(): the two reflects may arrive in one read.
  const answer = firstMessage(ch, PROBE_TIMEOUT_MS);
  const second = new Promise<boolean>((resolve) => {
    let n = 0;
    const t = setTimeout(() => resolve(false), CONNECT_BACK_TIMEOUT_MS + HANDSHAKE_TIMEOUT_MS + PROBE_TIMEOUT_MS);
    t.unref();
    ch.on('message', (m) => {
      if (++n === 2) resolve(m.t === 'reflect' && m.open);
    });
    ch.on('close', () => resolve(false));
  });
  let first: Message;
  try {
    ch.start();
    ch.sendMessage({ t: 'probe', listen });
    first = await answer;
    if (first.t !== 'reflect') throw new Error(`expected reflect from the discovery port, got ${first.t}`);
  } catch (e) {
    ch.close();
    throw e;
  }
  if (!listen || first.open) {
    ch.close();
    return { local: local.port, observed: first.observed, open: Promise.resolve(first.open) };
  }
  void second.finally(() => ch.close());
  return { local: local.port, observed: first.observed, open: second };
}

/** What discovery found: the mapping now, and (later) `open` when the connect-back came through (else null). */
export interface Discovery {
  mapping: NatMapping;
  upgrade: Promise<NatMapping | null>;
}

/**
 * The agent's side, once the control connection from local port `controlLocal` has been reflected as
 * `controlObserved`; `first`: the probe from `controlLocal` (with the connect-back asked for `listen`), begun
 * beside the control connection's handshake. Never throws: a failed probe gives `unknown` (links then fall
 * back to relays).
 */
export async function discover(o: ProbeOptions, controlLocal: number, controlObserved: Endpoint, first: Promise<ProbeAnswer>): Promise<Discovery> {
  try {
    const p1 = await first;
    let m = classify(controlLocal, controlObserved, p1.observed, false);
    if (m.kind === 'translating') {
      const p2 = await probe(o, 0, 0);
      m = confirmTranslation(m, p2.local, p2.observed) ?? { ...m, kind: 'random', xor: null, offset: null };
    }
    log.info('NAT discovered', { nat: m.kind, ext: m.ip, xor: m.xor ?? undefined, offset: m.offset ?? undefined, local: controlLocal });
    const upgrade = p1.open.then((open): NatMapping | null => {
      if (!open) return null;
      log.info('NAT discovered: open (the connect-back came through)', { ext: p1.observed.ip });
      return { kind: 'open', ip: p1.observed.ip, xor: null, offset: null };
    });
    return { mapping: m, upgrade };
  } catch (e) {
    log.warn('NAT discovery failed; links to this member will be relayed', { seed: `${o.seed.ip}:${o.seed.port}`, reason: (e as Error).message });
    return { mapping: { ...UNKNOWN_MAPPING, ip: controlObserved.ip }, upgrade: Promise.resolve(null) };
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
 * Answers one `probe` per connection with a `reflect` at once and, when the probe names a listen port and the
 * connect-back test succeeds, a second `reflect` (open), then closes. Only agents that know the network secret get an answer.
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
        // The reflection at once; the connect-back's success (only) in a second `reflect` (see probe()).
        ch.sendMessage({ t: 'reflect', observed: remote, open: false });
        if (m.listen > 0 && (await this.testConnectBack({ ip: remote.ip, port: m.listen }, ch.remoteStatic))) ch.sendMessage({ t: 'reflect', observed: remote, open: true });
        else return ch.close();
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

/**
 * The agent's control plane: joins a network through its seed, keeps the member list current, sends
 * heartbeats, and rides out the loss of the seed (it reconnects and rejoins with its id and address, which
 * is how a restarted seed relearns the membership).
 *
 * I/O is injectable: `connect` opens a stream to the seed (TCP by default; in-memory in tests).
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import fs from 'node:fs';
import type { Duplex } from 'node:stream';
import { Channel } from '../channel/channel';
import type { Endpoint, MemberInfo, Message, NatKind, PortMap, Outcome, RunKey } from '../wire/messages';
import type { KeyPair } from '../crypto/keys';
import { HandshakeError } from '../crypto/noise';
import {
  HEARTBEAT_INTERVAL_MS,
  DEAD_AFTER_MS,
  JOIN_TIMEOUT_MS,
  RECONNECT_MIN_MS,
  RECONNECT_MAX_MS,
  LEAVE_TIMEOUT_MS,
} from '../constants';
import { logger } from '../util/log';
import { BoxerError, WIRE_ERRORS, type WireErrorCode } from '../util/errors';
import { Peers, type LinkStatus } from '../traversal/peers';
import { discover, predictEndpoint, UNKNOWN_MAPPING, type NatMapping } from '../traversal/discovery';
import type { PeerIo } from '../traversal/io';
import type { LocalMember } from './local-member';
import type { PathKind } from '../wire/messages';
import { DISCOVERY_PORT_OFFSET } from '../constants';

export type Connector = (host: string, port: number) => Promise<Duplex>;

/** Opens a TCP connection, failing with the socket's error code. */
export const tcpConnector: Connector = (host, port) =>
  new Promise((resolve, reject) => {
    const sock = net.connect({ host, port });
    sock.setNoDelay(true);
    const onErr = (e: Error) => reject(e);
    sock.once('error', onErr);
    sock.once('connect', () => {
      sock.off('error', onErr);
      resolve(sock);
    });
  });

export interface AgentOptions {
  seedHost: string;
  seedPort: number;
  psk: Uint8Array;
  keys: KeyPair;
  name?: string;
  services: string[];
  /** Join with `services` on standby (MemberInfo.standby): `boxer run` takes connections once its program listens. */
  standby?: boolean;
  priv?: Endpoint[];
  nat?: NatKind;
  connect?: Connector;
  joinTimeoutMs?: number;
  /** Label for logs when several agents share a process. */
  label?: string;
  /** Peer links and NAT discovery (src/traversal); without it the agent only talks to the seed. */
  traversal?: TraversalOptions;
  /**
   * Local ports reserved for punched program connections (src/vnet/ports.ts), announced in the port map so
   * that other members pick their punch port there; default: the whole ip_local_port_range.
   */
  punchPorts?: [number, number];
  /** Which member of a `boxer lambda run` this is (sent in `join`; the seed refuses a second join with it). */
  run?: RunKey;
}

export interface TraversalOptions {
  io: PeerIo;
  /** The seed's discovery port (default: seed port + DISCOVERY_PORT_OFFSET). */
  discoveryPort?: number;
  /** Skip discovery and take this NAT kind (in-memory tests). */
  natOverride?: NatKind;
  /** Bound on open peer links (default MAX_LINKS). */
  maxLinks?: number;
  /** Override of RELAY_UPGRADE_MS (tests). */
  relayUpgradeMs?: number;
}

/** A Connector through the traversal I/O, so that the control connection's local port is known. */
export function ioConnector(io: PeerIo): Connector {
  return async (host, port) => {
    const ip = await io.resolve(host);
    return (await io.dial({ ip, port }, JOIN_TIMEOUT_MS)).stream;
  };
}

export interface Self {
  id: number;
  name: string;
  addr: string;
  network: string;
  observed: Endpoint;
}

export interface AgentEvents {
  /** The member list changed (join, leave, death, snapshot). */
  change: [];
  /** The connection to the seed was lost (the agent keeps trying) or regained. */
  seed: [connected: boolean];
  /** A `vnet` payload from another member (any path). */
  vnet: [from: number, payload: Uint8Array];
}

export class Agent extends EventEmitter<AgentEvents> implements LocalMember {
  self: Self | null = null;
  readonly members = new Map<number, MemberInfo>();
  private channel: Channel | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private lastHeard = 0;
  private pingN = 0;
  private stopping = false;
  private reconnecting = false;
  private readonly connect: Connector;
  private readonly log;
  /** Peer links (null without traversal). */
  readonly peers: Peers | null = null;
  /** What NAT discovery concluded (`unknown` until it ran). */
  mapping: NatMapping = UNKNOWN_MAPPING;
  private discovered = false;
  /** The seed's address as connected to. */
  private seedIp: string | null = null;

  constructor(private readonly opts: AgentOptions) {
    super();
    this.connect = opts.connect ?? (opts.traversal ? ioConnector(opts.traversal.io) : tcpConnector);
    this.log = logger('agent', opts.label ? { agent: opts.label } : {});
    if (opts.traversal) {
      this.peers = new Peers(
        {
          selfId: () => this.self?.id ?? 0,
          member: (id) => {
            // The seed's own member (it runs a command) is `open` without a known external address when the
            // seed listens on 0.0.0.0: it is where our control connection goes.
            const m = this.members.get(id);
            if (m && !m.ext && m.nat === 'open' && m.lport && this.seedIp) return { ...m, ext: { ip: this.seedIp, port: 0 } };
            return m;
          },
          members: () => this.members.values(),
          toSeed: (m) => !!this.channel && !this.channel.isClosed && (this.channel.sendMessage(m) || true),
          seedConnected: () => this.seedConnected,
          forget: (id, reason) => this.forget(id, reason),
        },
        { psk: opts.psk, keys: opts.keys, io: opts.traversal.io, maxLinks: opts.traversal.maxLinks, relayUpgradeMs: opts.traversal.relayUpgradeMs, label: opts.label },
      );
      this.peers.on('vnet', (from, payload) => this.emit('vnet', from, payload));
      if (opts.traversal.natOverride) this.mapping = this.peers.mapping = { ...UNKNOWN_MAPPING, kind: opts.traversal.natOverride };
    }
  }

  /** This agent's predicted external endpoint for a local port (null for `random`/`unknown` NATs). */
  predictEndpoint(localPort: number): Endpoint | null {
    return predictEndpoint(this.mapping, localPort);
  }

  /** Sends an opaque `vnet` payload to a member over whatever path reaches it (link, relay, seed). */
  sendTo(memberId: number, payload: Uint8Array): Promise<void> {
    if (!this.peers) return Promise.reject(new Error('peer links are off in this agent'));
    return this.peers.sendTo(memberId, payload);
  }

  /** Sends a vnet payload to the seed's relay of program connections; false when the seed is not reachable. */
  sendToSeed(payload: Uint8Array): boolean {
    return !!this.channel && !this.channel.isClosed && this.channel.sendMessage({ t: 'svnet', payload });
  }

  /** The seed's address as this agent reaches it (null while disconnected). */
  seedAddressNow(): string | null {
    return this.seedConnected ? this.seedIp : null;
  }

  /** Opens (or uses) the link to a member and measures its round-trip time. */
  ping(memberId: number): Promise<{ path: PathKind; endpoint: string; rttMs: number }> {
    if (!this.peers) return Promise.reject(new Error('peer links are off in this agent'));
    return this.peers.ping(memberId);
  }

  /** The open peer links. */
  links(): LinkStatus[] {
    return this.peers?.status() ?? [];
  }

  /** Our external endpoint for a local port, for the virtual network (null: unpredictable). */
  vnetEndpoint(localPort: number): Endpoint | null {
    if (this.mapping.kind === 'unknown') {
      // No NAT discovery ran (a network on one host's loopback): our address as the seed saw it.
      const ext = this.self ? this.members.get(this.self.id)?.ext : undefined;
      return ext ? { ip: ext.ip, port: localPort } : null;
    }
    return this.predictEndpoint(localPort);
  }

  /** Drops every peer link (they reopen on demand). */
  closeLinks(): number {
    return this.peers?.closeLinks() ?? 0;
  }

  statusExtra(): Record<string, unknown> {
    return { role: 'member', seedConnected: this.seedConnected, nat: this.mapping.kind, links: this.links() };
  }

  /** A member learnt gone over a peer link (the seed is down). */
  private forget(id: number, reason: 'leave' | 'dead'): boolean {
    if (!this.members.has(id) || id === this.self?.id) return false;
    this.members.delete(id);
    this.log.info(reason === 'leave' ? 'member left (heard from a peer)' : 'member died (heard from a peer)', { id });
    this.peers?.memberGone(id);
    this.emit('change');
    return true;
  }

  get seedConnected(): boolean {
    return !!this.channel && !this.channel.isClosed;
  }

  /**
   * Joins the network: retries an unreachable seed until the join timeout, then fails with a BoxerError
   * (SEED_UNREACHABLE, WRONG_SECRET, NAME_TAKEN, NETWORK_FULL) saying what happened and what to do.
   */
  async join(): Promise<Self> {
    const { seedHost, seedPort } = this.opts;
    const deadline = Date.now() + (this.opts.joinTimeoutMs ?? JOIN_TIMEOUT_MS);
    let attempts = 0;
    let lastErr = '';
    let pause = RECONNECT_MIN_MS;
    await this.peers?.start();
    for (;;) {
      attempts++;
      try {
        await this.session();
        return this.self!;
      } catch (e) {
        if (e instanceof BoxerError) throw e;
        lastErr = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
      }
      if (Date.now() + pause > deadline || this.stopping) {
        throw new BoxerError(
          'SEED_UNREACHABLE',
          `cannot reach the seed at ${seedHost}:${seedPort}: tried ${attempts} times over ${Math.round((this.opts.joinTimeoutMs ?? JOIN_TIMEOUT_MS) / 1000)} s, last error ${lastErr}. Check that \`boxer seed\` runs there and that this host can open connections to it.`,
        );
      }
      await sleep(pause);
      pause = Math.min(pause * 2, RECONNECT_MAX_MS);
    }
  }

  /** One connection to the seed: handshake, join, welcome. Resolves once welcomed. */
  private async session(): Promise<void> {
    const { seedHost, seedPort } = this.opts;
    const stream = await this.connect(seedHost, seedPort);
    let ch: Channel;
    try {
      ch = await Channel.initiate(stream, { psk: this.opts.psk, keys: this.opts.keys, peer: `seed ${seedHost}:${seedPort}` });
    } catch (e) {
      if (e instanceof HandshakeError && e.reason === 'wrong-secret') {
        throw new BoxerError('WRONG_SECRET', `the seed at ${seedHost}:${seedPort} refused us: wrong network secret. Use the secret the seed printed (--secret-file FILE or BOXER_SECRET).`);
      }
      if (e instanceof HandshakeError && e.reason === 'version') {
        throw new BoxerError('USAGE', `the seed at ${seedHost}:${seedPort} speaks another protocol version: run the same Boxer version everywhere`);
      }
      throw e;
    }
    const localPort = (stream as { localPort?: number }).localPort;
    const seedIp = ((stream as { remoteAddress?: string }).remoteAddress ?? seedHost).replace(/^::ffff:/, '');
    this.seedIp = seedIp;
    if (this.peers && !this.peers.primeTo) this.peers.primeTo = { ip: seedIp, port: this.opts.traversal?.discoveryPort ?? seedPort + DISCOVERY_PORT_OFFSET };
    const tr = this.opts.traversal;
    const probing = !!tr && !this.discovered && !tr.natOverride && !!localPort;
    let reflected = false;
    const sendJoin = () =>
      ch.sendMessage({
        t: 'join',
        name: this.self ? undefined : this.opts.name,
        services: this.opts.services,
        ...(this.opts.standby && this.opts.services.length ? { standby: true } : {}),
        priv: this.opts.priv ?? this.privCandidates(stream),
        nat: tr ? this.mapping.kind : this.opts.nat ?? 'unknown',
        lport: this.peers?.lport,
        map: tr ? portMapOf(this.mapping, this.opts.punchPorts) : undefined,
        run: this.opts.run,
        rejoin: this.self
          ? { id: this.self.id, addr: this.self.addr, name: this.self.name }
          : undefined,
      });
    await new Promise<void>((resolve, reject) => {
      let welcomed = false;
      ch.on('message', (m) => {
        if (probing && !reflected && m.t === 'reflect') {
          reflected = true;
          if (m.dport && this.peers && !tr!.discoveryPort) this.peers.primeTo = { ip: seedIp, port: m.dport };
          const ip = (stream as { remoteAddress?: string }).remoteAddress ?? seedHost;
          discover(
            { io: tr!.io, psk: this.opts.psk, keys: this.opts.keys, seed: { ip: ip.replace(/^::ffff:/, ''), port: tr!.discoveryPort ?? m.dport ?? seedPort + DISCOVERY_PORT_OFFSET } },
            localPort!,
            m.observed,
            this.peers!.lport,
          ).then((mapping) => {
            this.mapping = mapping;
            this.peers!.mapping = mapping;
            this.discovered = true;
            sendJoin();
          });
          return;
        }
        if (!welcomed) {
          if (m.t === 'error') {
            const code = (m.code in WIRE_ERRORS ? WIRE_ERRORS[m.code as WireErrorCode] : 'INTERNAL');
            reject(new BoxerError(code, `the seed refused the join: ${m.message}`));
            ch.close();
            return;
          }
          if (m.t !== 'welcome') {
            reject(new Error(`expected welcome, got ${m.t}`));
            ch.close(`expected welcome, got ${m.t}`);
            return;
          }
          welcomed = true;
          this.onWelcome(ch, m);
          resolve();
          return;
        }
        this.lastHeard = Date.now();
        this.onMessage(m);
      });
      ch.on('close', () => {
        if (!welcomed) reject(new Error('the seed closed the connection before welcoming us'));
        else this.onSeedLost(ch);
      });
      ch.start();
      if (probing) ch.sendMessage({ t: 'probe', listen: 0 });
      else sendJoin();
    });
  }

  /** Private address candidates for same-NAT peers: the control connection's local address, our listener's port. */
  private privCandidates(stream: Duplex): Endpoint[] {
    const ip = (stream as { localAddress?: string }).localAddress?.replace(/^::ffff:/, '');
    const port = this.peers?.lport;
    return ip && port && /^\d+\.\d+\.\d+\.\d+$/.test(ip) ? [{ ip, port }] : [];
  }

  private onWelcome(ch: Channel, m: Extract<Message, { t: 'welcome' }>): void {
    const rejoined = !!this.self;
    this.self = { id: m.id, name: m.name, addr: m.addr, network: m.network, observed: m.observed };
    if (this.opts.traversal?.natOverride && !this.discovered) {
      this.mapping = { kind: this.opts.traversal.natOverride, ip: m.observed.ip, xor: null, offset: null }; // the seed's view
      this.peers!.mapping = this.mapping;
      this.discovered = true;
    }
    this.channel = ch;
    this.lastHeard = Date.now();
    // A restarted seed that is still relearning: keep members it has not heard from yet.
    if (!(rejoined && m.relearning)) this.members.clear();
    for (const x of m.members) this.put(x);
    this.log.info(rejoined ? 'rejoined the network' : 'joined the network', { id: m.id, name: m.name, addr: m.addr, observed: `${m.observed.ip}:${m.observed.port}`, members: this.members.size });
    this.startHeartbeat();
    this.emit('seed', true);
    this.emit('change');
  }

  /**
   * Adds or updates a member from the seed. Names reach the member file and the shim's lookups, so they stay
   * unique here too (the decoder has checked each is a lowercase DNS label): an older holder of the same name is
   * dropped, the seed's latest word wins; a member announced with this member's own name is ignored.
   */
  private put(m: MemberInfo): void {
    if (this.self && m.id !== this.self.id && m.name === this.self.name) {
      this.log.warn('another member announced with our name: ignored', { name: m.name, id: m.id });
      return;
    }
    for (const x of this.members.values()) {
      if (x.id !== m.id && x.name === m.name) {
        this.log.warn('two members with one name: keeping the latest', { name: m.name, dropped: x.id, kept: m.id });
        this.members.delete(x.id);
        this.peers?.memberGone(x.id);
      }
    }
    this.members.set(m.id, m);
  }

  private onMessage(m: Message): void {
    switch (m.t) {
      case 'joined':
        this.put(m.m);
        this.emit('change');
        break;
      case 'left':
        if (m.id === this.self?.id) return; // the acknowledgement of our own leave
        this.peers?.memberGone(m.id);
        if (this.members.delete(m.id)) this.emit('change');
        break;
      case 'fwd':
        this.peers?.onFwd(m, null);
        break;
      case 'relay':
        this.peers?.onRelay(m, null);
        break;
      case 'svnet':
        // From the seed's relay of program connections: member id 0 stands for the seed.
        this.emit('vnet', 0, m.payload);
        break;
      case 'members':
        this.members.clear();
        for (const x of m.members) this.put(x);
        this.emit('change');
        break;
      case 'pong':
      case 'ping':
        break;
      case 'error':
        this.log.warn('the seed reported an error', { code: m.code, reason: m.message });
        break;
      default:
        this.channel?.close(`unexpected ${m.t} from the seed`);
    }
  }

  private startHeartbeat(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = setInterval(() => {
      const ch = this.channel;
      if (!ch || ch.isClosed) return;
      if (Date.now() - this.lastHeard > DEAD_AFTER_MS) {
        ch.close(`the seed has been silent for ${DEAD_AFTER_MS} ms`);
        return;
      }
      ch.sendMessage({ t: 'ping', n: ++this.pingN });
    }, HEARTBEAT_INTERVAL_MS);
    this.heartbeat.unref();
  }

  private onSeedLost(ch: Channel): void {
    if (this.channel !== ch) return;
    this.channel = null;
    if (this.stopping) return;
    this.log.warn('lost the connection to the seed; reconnecting', { seed: `${this.opts.seedHost}:${this.opts.seedPort}` });
    this.emit('seed', false);
    void this.reconnect();
  }

  /** Tries to reach the seed again for as long as the agent runs, with capped backoff. */
  private async reconnect(): Promise<void> {
    if (this.reconnecting) return;
    this.reconnecting = true;
    let pause = RECONNECT_MIN_MS;
    let attempts = 0;
    while (!this.stopping && !this.seedConnected) {
      await sleep(pause);
      if (this.stopping) break;
      attempts++;
      try {
        await this.session();
      } catch (e) {
        if (attempts === 1 || attempts % 30 === 0) {
          this.log.info('seed still unreachable', { attempts, reason: (e as Error).message });
        }
        if (e instanceof BoxerError && e.code !== 'SEED_UNREACHABLE') {
          this.log.error('the seed refused our rejoin', { reason: e.message });
        }
      }
      pause = Math.min(pause * 2, RECONNECT_MAX_MS);
    }
    this.reconnecting = false;
  }

  /** Members sorted by id. */
  list(): MemberInfo[] {
    return [...this.members.values()].sort((a, b) => a.id - b.id);
  }

  /** Waits until the network has at least `n` members; calls `progress` on every change. */
  waitForMembers(n: number, progress?: (have: number) => void, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        progress?.(this.members.size);
        if (this.members.size >= n) {
          this.off('change', check);
          resolve();
        }
      };
      signal?.addEventListener('abort', () => {
        this.off('change', check);
        reject(new Error('aborted while waiting for members'));
      });
      this.on('change', check);
      check();
    });
  }

  /**
   * Provides these services from now on; `standby`: declared, but no connections for them now (the program
   * does not listen yet, or the member drains before it leaves). The seed re-announces this member to everyone;
   * the next join (a seed restart) carries them too.
   */
  setServices(services: string[], standby = false): void {
    this.opts.services = [...services];
    this.opts.standby = standby;
    const me = this.self && this.members.get(this.self.id);
    if (me) {
      const { standby: _was, ...rest } = me;
      this.members.set(me.id, { ...rest, services: [...services], ...(standby ? { standby: true } : {}) });
      this.emit('change');
    }
    this.channel?.sendMessage({ t: 'services', services: [...services], ...(standby ? { standby: true } : {}) });
  }

  /** The services this member provides, and whether it is on standby (see MemberInfo.standby). */
  get serving(): { services: string[]; standby: boolean } {
    return { services: [...this.opts.services], standby: !!this.opts.standby };
  }

  /** Leaves gracefully: tells the seed (which tells everyone, and observers how the command ended), then closes. */
  async leave(outcome?: Outcome): Promise<void> {
    this.stopping = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    const ch = this.channel;
    if (this.peers) {
      if (!ch || ch.isClosed) this.peers.announceLeave();
      await this.peers.close();
    }
    if (!ch || ch.isClosed) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, LEAVE_TIMEOUT_MS);
      ch.on('message', (m) => {
        if (m.t === 'left' && m.id === this.self?.id) resolve();
      });
      ch.on('close', () => resolve());
      ch.sendMessage(outcome ? { t: 'leave', outcome } : { t: 'leave' });
      t.unref();
    });
    ch.close();
  }

  /** Stops without telling anyone (tests of dead-member detection use it). */
  stop(): void {
    this.stopping = true;
    if (this.heartbeat) clearInterval(this.heartbeat);
    void this.peers?.close();
    this.channel?.close();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** This host's ip_local_port_range (per network namespace): where its sockets bound to port 0 land. */
export function localPortRange(): [number, number] {
  try {
    const [lo, hi] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (lo > 0 && hi >= lo && hi < 65536) return [lo, hi];
  } catch {
    /* not Linux, or /proc hidden: the kernel default */
  }
  return [32768, 60999];
}

/** The port map announced at join: how the data path predicts this member's external ports. */
export function portMapOf(m: NatMapping, ports?: [number, number]): PortMap {
  const local = localPortRange();
  const [lo, hi] = ports ?? local;
  return { xor: m.xor ?? 0, offset: m.kind === 'translating' && m.xor === null ? m.offset ?? 0 : 0, lo, hi, rlo: local[0], rhi: local[1] };
}

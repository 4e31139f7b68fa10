/**
 * Peer links: encrypted agent-to-agent Channels, opened on demand, over the best path the two NATs allow.
 * This file wires the subsystems and is the API the agent uses; each subsystem owns one file:
 *
 *   paths.ts        which paths to try, best first (the decision)
 *   punch.ts        punched and hairpin links (both sides of the `punch` exchange)
 *   relayed-link.ts relayed links, and the relay hop
 *   link-setup.ts   handshake, hello and identity on a fresh stream
 *   links.ts        the link table: one link per member, the bound (MAX_LINKS), inbound waits
 *   signal.ts       set-up messages without a link (`fwd` via the seed or a home), gossip of departures
 *   homes.ts        home links, and deaths noticed while the seed is down
 *   keepalive.ts    keepalives, idle and silent links, upgrades of relayed links
 *
 * The agent is reached through a narrow interface (`PeerHost`), so tests can drive this in memory.
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import type { KeyPair } from '../crypto/keys';
import type { Endpoint, MemberInfo, Message, PathKind } from '../wire/messages';
import { LINK_KEEPALIVE_MS, LINK_OPEN_TIMEOUT_MS, MAX_LINKS, PING_TIMEOUT_MS, PING_TOTAL_MS, RELAY_UPGRADE_MS, DIRECT_CONNECT_TIMEOUT_MS, SIGNAL_TIMEOUT_MS } from '../constants';
import { withTimeout } from '../util/async';
import { logger, type Logger } from '../util/log';
import { predictEndpoint, UNKNOWN_MAPPING, type NatMapping } from './discovery';
import type { Listener, PeerIo } from './io';
import { LinkTable, type Link, type LinkStatus } from './links';
import { setUpLink, type SetupSpec } from './link-setup';
import { planPaths, type PathStep } from './paths';
import { Punch } from './punch';
import { RelayedLinks } from './relayed-link';
import { Signal } from './signal';
import { Homes } from './homes';
import { Keepalive, pingLink } from './keepalive';

export type { LinkStatus } from './links';

/** What the link layer needs from the agent. */
export interface PeerHost {
  /** This member's id (0 before the first welcome). */
  selfId(): number;
  member(id: number): MemberInfo | undefined;
  members(): Iterable<MemberInfo>;
  /** Sends to the seed; false when it is not connected. */
  toSeed(m: Message): boolean;
  seedConnected(): boolean;
  /** A member is gone (learnt over a peer link); returns false when it was not known. */
  forget(id: number, reason: 'leave' | 'dead'): boolean;
}

export interface PeersOptions {
  psk: Uint8Array;
  keys: KeyPair;
  io: PeerIo;
  maxLinks?: number;
  /** Override of RELAY_UPGRADE_MS (tests). */
  relayUpgradeMs?: number;
  label?: string;
}

export interface PeersEvents {
  vnet: [from: number, payload: Uint8Array];
  change: [];
}

const epText = (e: Endpoint) => `${e.ip}:${e.port}`;

export class Peers extends EventEmitter<PeersEvents> {
  mapping: NatMapping = { ...UNKNOWN_MAPPING };
  /** A public endpoint to send a priming SYN to (the seed's discovery port), set by the agent. */
  primeTo: Endpoint | null = null;
  /** Links being opened, by member (owned by ensure). */
  private readonly opening = new Map<number, Promise<Link>>();
  private readonly links: LinkTable;
  private readonly punches: Punch;
  private readonly relayed: RelayedLinks;
  private readonly signals: Signal;
  private readonly homes: Homes;
  private readonly keepalive: Keepalive;
  private listener: Listener | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private readonly log: Logger;

  constructor(
    private readonly host: PeerHost,
    private readonly opts: PeersOptions,
  ) {
    super();
    const log = (this.log = logger('peers', opts.label ? { agent: opts.label } : {}));
    // The host's methods, callable on their own.
    const h: PeerHost = {
      selfId: () => host.selfId(),
      member: (id) => host.member(id),
      members: () => host.members(),
      toSeed: (m) => host.toSeed(m),
      seedConnected: () => host.seedConnected(),
      forget: (id, reason) => host.forget(id, reason),
    };
    this.links = new LinkTable(opts.maxLinks ?? MAX_LINKS, { change: () => this.emit('change'), linked: (id) => this.homes.linked(id), lost: (l) => !this.closed && this.homes.lost(l) }, log);
    const links = this.links;
    const ensure = (id: number, home = false) => this.ensure(id, home);
    const homeOf = (id: number) => this.homes.of(id);
    const setUp = (s: Duplex, spec: SetupSpec) => this.setUp(s, spec);
    this.signals = new Signal({ links, keys: opts.keys, member: h.member, selfId: h.selfId, members: h.members, toSeed: h.toSeed, homeOf, ensure, onPunch: (f, m) => this.punches.onMessage(f, m), onVnet: (f, p) => this.emit('vnet', f, p), log });
    this.punches = new Punch({
      io: opts.io,
      selfId: h.selfId,
      member: h.member,
      predict: (p) => this.predict(p),
      signal: (to, m) => this.signals.send(to, m),
      setUp,
      dialDirect: (b, ep) => this.dial(b, ep, 'direct', DIRECT_CONNECT_TIMEOUT_MS, false),
      primeTarget: () => this.primeTarget(),
      log,
    });
    this.relayed = new RelayedLinks({ links, selfId: h.selfId, member: h.member, seedConnected: h.seedConnected, toSeed: h.toSeed, homeOf, ensure, setUp, log });
    const gossipDeath = (id: number) => void this.signals.gossipLeft(id, 'dead', null, true);
    this.homes = new Homes({ links, selfId: h.selfId, members: h.members, member: h.member, seedConnected: h.seedConnected, ensure, opening: (id) => this.opening.has(id), forget: h.forget, gossipDeath, log });
    const directAttempts = (b: MemberInfo) => this.plan(b).filter((s) => s.how !== 'relay').map((s) => () => this.run(b, s, false));
    const afterTick = () => {
      this.links.enforceBound(null);
      this.homes.maintain();
    };
    this.keepalive = new Keepalive({ links, member: h.member, directAttempts, afterTick, upgradeMs: opts.relayUpgradeMs ?? RELAY_UPGRADE_MS, log });
  }

  /** Starts the peer-link listener; returns its port. */
  async start(): Promise<number> {
    if (!this.listener) {
      this.listener = await this.opts.io.listen((s, remote) => void this.accept(s, epText(remote)));
      this.timer = setInterval(() => !this.closed && this.keepalive.tick(), LINK_KEEPALIVE_MS);
      this.timer.unref();
    }
    return this.listener.port;
  }

  get lport(): number {
    return this.listener?.port ?? 0;
  }

  get size(): number {
    return this.links.size;
  }

  get stats(): { opened: number; closed: number; maxOpen: number } {
    return this.links.stats;
  }

  /** This agent's predicted external endpoint for a local port (null when unpredictable). */
  predict(localPort: number): Endpoint | null {
    return predictEndpoint(this.mapping, localPort);
  }

  status(): LinkStatus[] {
    return this.links.status();
  }

  link(id: number): LinkStatus | undefined {
    return this.status().find((l) => l.id === id);
  }

  /** The path of the open link to member `id`, if there is one. */
  linkPath(id: number): PathKind | undefined {
    return this.links.get(id)?.path;
  }

  /** The `open` member that keeps a link to `id` (homes.ts), or null. */
  homeOf(id: number): number | null {
    return this.homes.of(id);
  }

  // ---- the API the agent exposes ---------------------------------------------------------------------------

  /** Opens (or reuses) the link to member `id` and measures one round trip over it (bounded by PING_TOTAL_MS). */
  async ping(id: number): Promise<{ path: PathKind; endpoint: string; rttMs: number }> {
    // Once more on a new link if the far side closed this one meanwhile (its own bound, an upgrade).
    const deadline = Date.now() + PING_TOTAL_MS;
    for (let attempt = 0; ; attempt++) {
      const l = await withTimeout(this.ensure(id), Math.max(1, deadline - Date.now()), `reaching member ${id}`);
      l.lastUsed = Date.now();
      try {
        const rttMs = await withTimeout(pingLink(l), Math.max(1, Math.min(PING_TIMEOUT_MS, deadline - Date.now())), `ping of member ${id}`);
        return { path: l.path, endpoint: l.endpoint, rttMs };
      } catch (e) {
        if (attempt >= 1 || !l.ch.isClosed) throw e;
      }
    }
  }

  /**
   * Sends an opaque vnet payload to member `id`: over its link; without one, through the seed at once while the
   * link opens for the next messages (a first connection to a member costs one hop through the seed, not a link
   * set-up; a member that is linking to us already gets our answers the same way and opens nothing); without
   * the seed, over the link once open, else through its home.
   */
  async sendTo(id: number, payload: Uint8Array): Promise<void> {
    const msg: Message = { t: 'vnet', payload };
    if (!this.links.live(id) && this.signals.firstContact(id, msg, this.opening.has(id))) return;
    try {
      const l = await this.ensure(id);
      l.lastUsed = Date.now();
      if (l.ch.sendMessage({ t: 'vnet', payload })) return;
      if (!l.ch.isClosed) return; // queued in the socket buffer
    } catch (e) {
      this.log.debug('no link for a vnet message; forwarding it', { to: id, reason: (e as Error).message });
    }
    await this.signals.send(id, msg);
  }

  /** The link to `id`, opened if needed (bounded by LINK_OPEN_TIMEOUT_MS). */
  ensure(id: number, home = false): Promise<Link> {
    const l = this.links.live(id);
    if (l) return Promise.resolve(l);
    const pending = this.opening.get(id);
    if (pending) return pending;
    const p = withTimeout(this.open(id, home), LINK_OPEN_TIMEOUT_MS, `opening a link to member ${id}`).finally(() => this.opening.delete(id));
    this.opening.set(id, p);
    return p;
  }

  /** Delivers a set-up or vnet message to `to`: on its link, else through the seed, else through its home. */
  signal(to: number, inner: Message): Promise<void> {
    return this.signals.send(to, inner);
  }

  /** A `fwd` from the seed (via null) or from a linked member. */
  onFwd(m: Extract<Message, { t: 'fwd' }>, via: number | null): void {
    this.signals.onFwd(m, via);
  }

  /** A `relay` from the seed (via null) or from a linked member. */
  onRelay(m: Extract<Message, { t: 'relay' }>, via: number | null): void {
    this.relayed.onMessage(m, via);
  }

  /** Leaving while the seed may be down: tell the members we are linked to (our home floods it). */
  announceLeave(): void {
    this.signals.announceLeave();
  }

  /** Closes every link (tests: links must reopen, e.g. without the seed). Home links come back by themselves. */
  closeLinks(): number {
    return this.links.closeAll();
  }

  /** The seed said a member is gone: drop its link. */
  memberGone(id: number): void {
    this.links.get(id)?.ch.close();
  }

  // ---- opening a link: the plan (paths.ts), run step by step ---------------------------------------------

  /** The paths to try toward `b`, best first. */
  plan(b: MemberInfo): PathStep[] {
    return planPaths(this.mapping, this.lport, b);
  }

  private async open(id: number, home: boolean): Promise<Link> {
    const b = this.host.member(id);
    if (!b) throw new Error(`member ${id} is not in the network`);
    if (id === this.host.selfId()) throw new Error('that is this member');
    const tried: string[] = [];
    for (const step of this.plan(b)) {
      try {
        const l = await this.run(b, step, home);
        this.log.info('link open', { peer: b.name, path: l.path, endpoint: l.endpoint });
        return l;
      } catch (e) {
        tried.push(`${step.path}: ${(e as Error).message}`);
        this.log.debug('path failed', { peer: b.name, path: step.path, reason: (e as Error).message });
      }
      const l = this.links.live(id); // the other side may have linked to us meanwhile
      if (l) return l;
    }
    throw new Error(`cannot reach ${b.name}: ${tried.join('; ')}`);
  }

  private run(b: MemberInfo, step: PathStep, home: boolean): Promise<Link> {
    switch (step.how) {
      case 'dial':
        return this.dial(b, step.ep, step.path, step.timeoutMs, home);
      case 'ask':
        return this.askToDial(b, step.ep);
      case 'punch':
        return this.punches.request(b, step.path);
      case 'relay':
        return this.relayed.open(b);
    }
  }

  private async dial(b: MemberInfo, ep: Endpoint, path: PathKind, timeoutMs: number, home: boolean): Promise<Link> {
    const { stream } = await this.opts.io.dial(ep, timeoutMs);
    return this.setUp(stream, { role: 'init', expect: b.id, path, endpoint: epText(ep), home });
  }

  /** We are `open`: ask `b` (behind a NAT) to dial our listener; its link arrives through accept(). */
  private async askToDial(b: MemberInfo, me: Endpoint | null): Promise<Link> {
    const arrived = this.links.waitInbound(b.id, SIGNAL_TIMEOUT_MS + DIRECT_CONNECT_TIMEOUT_MS);
    await this.signals.send(b.id, { t: 'punch', sid: 0, phase: 'dial', ep: me, path: 'direct' });
    return arrived;
  }

  private setUp(stream: Duplex, spec: SetupSpec): Promise<Link> {
    const register = (l: Link): Link => {
      if (this.closed) {
        l.ch.close(); // set up while we shut down: never kept (it would keep the process alive)
        throw new Error('shutting down');
      }
      return this.links.register(l);
    };
    const deps = { psk: this.opts.psk, keys: this.opts.keys, selfId: () => this.host.selfId(), member: (id: number) => this.host.member(id), register, onMessage: (l: Link, m: Message) => this.onLinkMessage(l, m), servesHome: (id: number) => this.homes.serves(id) };
    return setUpLink(deps, stream, spec);
  }

  private async accept(stream: Duplex, endpoint: string): Promise<void> {
    stream.on('error', () => {});
    if (this.closed) return void stream.destroy();
    try {
      await this.setUp(stream, { role: 'resp', expect: null, path: 'direct', endpoint, home: false });
    } catch (e) {
      this.log.debug('incoming peer link refused', { endpoint, reason: (e as Error).message });
    }
  }

  /** Where a hairpin answer sends its priming SYN: the seed's discovery port, else our home's listener. */
  private primeTarget(): Endpoint | null {
    if (this.host.seedConnected() && this.primeTo) return this.primeTo;
    const h = this.homes.of(this.host.selfId());
    const m = h !== null ? this.host.member(h) : undefined;
    return m?.ext && m.lport ? { ip: m.ext.ip, port: m.lport } : null;
  }

  // ---- messages on a link ---------------------------------------------------------------------------------

  private onLinkMessage(l: Link, m: Message): void {
    l.lastHeard = Date.now();
    switch (m.t) {
      case 'ping':
        l.ch.sendMessage({ t: 'pong', n: m.n });
        break;
      case 'pong': {
        const p = l.pings.get(m.n);
        if (p) {
          l.pings.delete(m.n);
          l.rttMs = Date.now() - p.t0;
          p.done?.(l.rttMs);
        }
        break;
      }
      case 'punch':
        this.punches.onMessage(l.member, m);
        break;
      case 'vnet':
        l.lastUsed = Date.now();
        this.emit('vnet', l.member, m.payload);
        break;
      case 'fwd':
        this.signals.onFwd(m, l.member);
        break;
      case 'relay':
        l.lastUsed = Date.now();
        this.relayed.onMessage(m, l.member);
        break;
      case 'left':
        if (m.id === this.host.selfId()) break;
        // A member speaks for itself; news of another's departure counts only while the seed (which is
        // authoritative) is down, and never about a member whose own link to us is alive.
        if (m.id !== l.member && (this.host.seedConnected() || this.links.live(m.id))) {
          this.log.info('ignoring news of another member leaving', { from: l.member, about: m.id, reason: m.reason });
          break;
        }
        if (this.host.forget(m.id, m.reason)) void this.signals.gossipLeft(m.id, m.reason, l.member, false);
        break;
      default:
        this.log.debug('ignoring a message on a peer link', { peer: l.member, type: m.t });
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    this.signals.close();
    this.homes.close();
    this.links.closeAll();
    this.relayed.close();
    await this.listener?.close();
  }
}

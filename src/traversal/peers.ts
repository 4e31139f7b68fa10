/**
 * Peer links: encrypted agent-to-agent Channels, opened on demand, over the best path the two NATs allow
 * (docs/nat-traversal.md):
 *
 *   `open` member involved                      -> `direct` (dial its listener; or ask it to dial us)
 *   same external address                       -> `lan` (private candidates), then `hairpin`, then `relay`
 *   both `preserving`/`translating`             -> `punched` (simultaneous open), then `relay`
 *   `random` or `unknown` with a NATed member   -> `relay` (through the seed, else a public member)
 *
 * Set-up messages (`punch`) travel on an existing link, else through the seed (`fwd`), else through the
 * peer's home (the `open` member it keeps a link to, chosen by rendezvous hashing): the seed is not needed
 * once everyone has joined. The number of links is bounded (MAX_LINKS; LRU close of idle links).
 *
 * The agent is reached through a narrow interface (`PeerHost`), so tests can drive this in memory.
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { Channel } from '../control/channel';
import type { KeyPair } from '../crypto/keys';
import { encodeMessage, decodeMessage, type Endpoint, type MemberInfo, type Message, type PathKind } from '../wire/messages';
import {
  DIRECT_CONNECT_TIMEOUT_MS,
  HAIRPIN_PRIME_MS,
  HAIRPIN_REDIAL_MS,
  HOME_DEATH_GRACE_MS,
  HOME_RETRY_MS,
  LAN_CONNECT_TIMEOUT_MS,
  LINK_DEAD_AFTER_MS,
  LINK_IDLE_MS,
  LINK_KEEPALIVE_MS,
  LINK_MIN_AGE_MS,
  LINK_OPEN_TIMEOUT_MS,
  MAX_LINKS,
  PING_TIMEOUT_MS,
  PING_TOTAL_MS,
  PUNCH_TIMEOUT_MS,
  RELAY_UPGRADE_MS,
  SIGNAL_TIMEOUT_MS,
} from '../constants';
import { logger, type Logger } from '../util/log';
import { predictEndpoint, type NatMapping } from './discovery';
import type { Listener, PeerIo } from './io';
import { RelayStream } from './relay';

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

export interface LinkStatus {
  id: number;
  path: PathKind;
  endpoint: string;
  rttMs: number | null;
  home: boolean;
  idleMs: number;
}

export interface PeersEvents {
  vnet: [from: number, payload: Uint8Array];
  change: [];
}

class Link {
  lastHeard = Date.now();
  lastUsed = Date.now();
  readonly since = Date.now();
  rttMs: number | null = null;
  n = 0;
  readonly pings = new Map<number, { t0: number; done?: (rtt: number) => void }>();
  constructor(
    readonly member: number,
    readonly ch: Channel,
    readonly path: PathKind,
    readonly endpoint: string,
    readonly initiatorId: number,
    public home: boolean,
  ) {}
}

/** Deterministic hash of a pair of ids (rendezvous hashing for homes). */
function score(a: number, b: number): number {
  let h = (Math.imul(a, 0x9e3779b1) ^ Math.imul(b + 0x632be5ab, 0x85ebca6b)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d) >>> 0;
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

const sameKey = (a: Uint8Array, b: Uint8Array) => Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;
const epText = (e: Endpoint) => `${e.ip}:${e.port}`;
const punchable = (k: string) => k === 'preserving' || k === 'translating';

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      t = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}

interface Attempt {
  path: PathKind;
  run: () => Promise<Link>;
}

export class Peers extends EventEmitter<PeersEvents> {
  mapping: NatMapping = { kind: 'unknown', ip: null, xor: null, offset: null };
  private readonly links = new Map<number, Link>();
  private readonly opening = new Map<number, Promise<Link>>();
  private readonly waiters = new Map<number, Set<(l: Link) => void>>();
  private readonly acks = new Map<number, { resolve: (ep: Endpoint) => void; reject: (e: Error) => void }>();
  private readonly relays = new Map<string, RelayStream>();
  private readonly deathTimers = new Map<number, NodeJS.Timeout>();
  private readonly upgrading = new Set<number>();
  private listener: Listener | null = null;
  private timer: NodeJS.Timeout | null = null;
  private homeId: number | null = null;
  /** A public endpoint to send a priming SYN to (the seed's discovery port), set by the agent. */
  primeTo: Endpoint | null = null;
  private nextHomeTry = 0;
  private closed = false;
  private readonly maxLinks: number;
  private readonly upgradeMs: number;
  private readonly log: Logger;
  readonly stats = { opened: 0, closed: 0, maxOpen: 0 };

  constructor(
    private readonly host: PeerHost,
    private readonly opts: PeersOptions,
  ) {
    super();
    this.maxLinks = opts.maxLinks ?? MAX_LINKS;
    this.upgradeMs = opts.relayUpgradeMs ?? RELAY_UPGRADE_MS;
    this.log = logger('peers', opts.label ? { agent: opts.label } : {});
  }

  /** Starts the peer-link listener; returns its port. */
  async start(): Promise<number> {
    if (!this.listener) {
      this.listener = await this.opts.io.listen((s, remote) => void this.accept(s, epText(remote)));
      this.timer = setInterval(() => this.tick(), LINK_KEEPALIVE_MS);
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

  /** This agent's predicted external endpoint for a local port (null when unpredictable). */
  predict(localPort: number): Endpoint | null {
    return predictEndpoint(this.mapping, localPort);
  }

  status(): LinkStatus[] {
    const now = Date.now();
    return [...this.links.values()].map((l) => ({ id: l.member, path: l.path, endpoint: l.endpoint, rttMs: l.rttMs, home: l.home, idleMs: now - l.lastUsed }));
  }

  link(id: number): LinkStatus | undefined {
    return this.status().find((l) => l.id === id);
  }

  // ---- the API the agent exposes ---------------------------------------------------------------------------

  /** Opens (or reuses) the link to member `id` and measures one round trip over it. */
  async ping(id: number): Promise<{ path: PathKind; endpoint: string; rttMs: number }> {
    // Once more on a new link if the far side closed this one meanwhile (its own bound, an upgrade).
    const deadline = Date.now() + PING_TOTAL_MS;
    for (let attempt = 0; ; attempt++) {
      const l = await withTimeout(this.ensure(id), Math.max(1, deadline - Date.now()), `reaching member ${id}`);
      l.lastUsed = Date.now();
      try {
        const rttMs = await withTimeout(this.pingLink(l), Math.max(1, Math.min(PING_TIMEOUT_MS, deadline - Date.now())), `ping of member ${id}`);
        return { path: l.path, endpoint: l.endpoint, rttMs };
      } catch (e) {
        if (attempt >= 1 || !l.ch.isClosed) throw e;
      }
    }
  }

  /** Sends an opaque vnet payload to member `id`: over a link when one can be had, else through the seed/home. */
  async sendTo(id: number, payload: Uint8Array): Promise<void> {
    try {
      const l = await this.ensure(id);
      l.lastUsed = Date.now();
      if (l.ch.sendMessage({ t: 'vnet', payload })) return;
      if (!l.ch.isClosed) return; // queued in the socket buffer
    } catch (e) {
      this.log.debug('no link for a vnet message; forwarding it', { to: id, reason: (e as Error).message });
    }
    await this.signal(id, { t: 'vnet', payload });
  }

  /** The link to `id`, opened if needed (bounded by LINK_OPEN_TIMEOUT_MS). */
  ensure(id: number, home = false): Promise<Link> {
    const l = this.links.get(id);
    if (l && !l.ch.isClosed) return Promise.resolve(l);
    const pending = this.opening.get(id);
    if (pending) return pending;
    const p = withTimeout(this.open(id, home), LINK_OPEN_TIMEOUT_MS, `opening a link to member ${id}`).finally(() => this.opening.delete(id));
    this.opening.set(id, p);
    return p;
  }

  // ---- path selection ------------------------------------------------------------------------------------

  /** The paths to try toward `b`, best first. */
  plan(b: MemberInfo, home = false): Attempt[] {
    const me = this.mapping;
    const out: Attempt[] = [];
    if (b.nat === 'open' && b.lport && b.ext) {
      const ep = { ip: b.ext.ip, port: b.lport };
      out.push({ path: 'direct', run: () => this.dialAndGreet(b, ep, 'direct', DIRECT_CONNECT_TIMEOUT_MS, home) });
      return out;
    }
    if (me.kind === 'open' && this.lport) {
      // Without our own address (a seed listening on 0.0.0.0), the peer dials the address it knows us by.
      out.push({ path: 'direct', run: () => this.askToDial(b, me.ip ? { ip: me.ip, port: this.lport } : null) });
      return out;
    }
    if (me.ip && b.ext && me.ip === b.ext.ip) {
      for (const c of b.priv) out.push({ path: 'lan', run: () => this.dialAndGreet(b, c, 'lan', LAN_CONNECT_TIMEOUT_MS, home) });
      if (punchable(me.kind) && punchable(b.nat)) out.push({ path: 'hairpin', run: () => this.punch(b, 'hairpin') });
    } else if (punchable(me.kind) && punchable(b.nat)) {
      out.push({ path: 'punched', run: () => this.punch(b, 'punched') });
    }
    out.push({ path: 'relay', run: () => this.relayTo(b) });
    return out;
  }

  private async open(id: number, home: boolean): Promise<Link> {
    const b = this.host.member(id);
    if (!b) throw new Error(`member ${id} is not in the network`);
    if (id === this.host.selfId()) throw new Error('that is this member');
    const tried: string[] = [];
    for (const a of this.plan(b, home)) {
      try {
        const l = await a.run();
        this.log.info('link open', { peer: b.name, path: l.path, endpoint: l.endpoint });
        return l;
      } catch (e) {
        tried.push(`${a.path}: ${(e as Error).message}`);
        this.log.debug('path failed', { peer: b.name, path: a.path, reason: (e as Error).message });
      }
      const l = this.links.get(id); // the other side may have linked to us meanwhile
      if (l && !l.ch.isClosed) return l;
    }
    throw new Error(`cannot reach ${b.name}: ${tried.join('; ')}`);
  }

  private async dialAndGreet(b: MemberInfo, ep: Endpoint, path: PathKind, timeoutMs: number, home: boolean): Promise<Link> {
    const { stream } = await this.opts.io.dial(ep, timeoutMs);
    return this.establish(stream, 'init', b.id, path, epText(ep), home);
  }

  /** We are `open`: ask `b` (behind a NAT) to dial our listener; its link arrives through accept(). */
  private async askToDial(b: MemberInfo, me: Endpoint | null): Promise<Link> {
    const arrived = this.waitInbound(b.id, SIGNAL_TIMEOUT_MS + DIRECT_CONNECT_TIMEOUT_MS);
    await this.signal(b.id, { t: 'punch', sid: 0, phase: 'dial', ep: me, path: 'direct' });
    return arrived;
  }

  /** Simultaneous open with `b`: trade predicted endpoints of fresh ports, then both connect at once. */
  private async punch(b: MemberInfo, path: PathKind): Promise<Link> {
    if (path === 'hairpin') return this.hairpin(b);
    const sock = this.opts.io.bindFresh();
    try {
      const mine = this.predict(sock.port);
      if (!mine) throw new Error('cannot predict our external endpoint');
      const sid = (Math.random() * 2 ** 32) >>> 0;
      const ack = new Promise<Endpoint>((resolve, reject) => this.acks.set(sid, { resolve, reject }));
      try {
        await this.signal(b.id, { t: 'punch', sid, phase: 'req', ep: mine, path });
        const theirs = await withTimeout(ack, SIGNAL_TIMEOUT_MS, 'punch answer');
        const stream = await this.opts.io.connectBound(sock, theirs, PUNCH_TIMEOUT_MS);
        return await this.establish(stream, this.host.selfId() < b.id ? 'init' : 'resp', b.id, path, epText(theirs), false);
      } finally {
        this.acks.delete(sid);
      }
    } finally {
      sock.close();
    }
  }

  /** A relayed link: through the seed when it is up, else through the peer's home. */
  private async relayTo(b: MemberInfo): Promise<Link> {
    const sid = (Math.random() * 2 ** 32) >>> 0;
    let send: (m: Message) => boolean;
    let via: string;
    if (this.host.seedConnected()) {
      send = (m) => this.host.toSeed(m);
      via = 'seed';
    } else {
      const h = this.homeOf(b.id);
      if (h === null || h === this.host.selfId()) throw new Error('no relay: the seed is down and the member has no home');
      const hl = await this.ensure(h);
      send = (m) => hl.ch.sendMessage(m) || !hl.ch.isClosed;
      via = this.host.member(h)?.name ?? String(h);
    }
    const stream = this.relayStream(b.id, sid, send, true);
    return this.establish(stream, 'init', b.id, 'relay', `via ${via}`, false);
  }

  private relayStream(peer: number, sid: number, send: (m: Message) => boolean, hop: boolean): RelayStream {
    const key = `${peer}:${sid}`;
    const s = new RelayStream(peer, sid, (data, end) => send({ t: 'relay', peer, sid, data, end, hop }), () => this.relays.delete(key));
    this.relays.set(key, s);
    return s;
  }

  // ---- link set-up ---------------------------------------------------------------------------------------

  /** Handshake and hello on a fresh stream; `expect`: the member we meant to reach (null: any member). */
  private async establish(stream: Duplex, role: 'init' | 'resp', expect: number | null, path: PathKind, endpoint: string, home: boolean): Promise<Link> {
    const opts = { psk: this.opts.psk, keys: this.opts.keys, peer: `peer ${endpoint}` };
    let ch: Channel;
    try {
      ch = role === 'init' ? await Channel.initiate(stream, opts) : await Channel.respond(stream, opts);
    } catch (e) {
      stream.destroy();
      throw e;
    }
    // One listener for the channel's whole life: the hello, then messages queued until the link is registered.
    let onFirst: ((m: Message) => void) | null = null;
    let link: Link | null = null;
    const queue: Message[] = [];
    const first = new Promise<Message>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no hello from ${endpoint} within ${SIGNAL_TIMEOUT_MS} ms`)), SIGNAL_TIMEOUT_MS);
      onFirst = (m) => {
        clearTimeout(t);
        resolve(m);
      };
      ch.once('close', () => {
        clearTimeout(t);
        reject(new Error(`${endpoint} closed the link during set-up`));
      });
    });
    ch.on('message', (m) => {
      if (onFirst) {
        const f = onFirst;
        onFirst = null;
        f(m);
      } else if (link) this.onLinkMessage(link, m);
      else if (queue.length < 64) queue.push(m);
    });
    ch.start();
    const self = this.host.selfId();
    if (role === 'init') ch.sendMessage({ t: 'hello', id: self, path, home });
    let m: Message;
    try {
      m = await first;
    } catch (e) {
      ch.close();
      throw e;
    }
    if (m.t !== 'hello') {
      ch.close(`expected hello on a peer link, got ${m.t}`);
      throw new Error('no hello');
    }
    if (m.path === 'probe') {
      ch.close(); // the seed's connect-back test: the handshake was the answer
      throw new Error('connect-back probe');
    }
    const who = this.host.member(m.id);
    if (!who || !sameKey(who.key, ch.remoteStatic) || (expect !== null && m.id !== expect)) {
      ch.close(`peer link from ${endpoint}: key does not match member ${m.id}`);
      throw new Error(`the peer at ${endpoint} is not member ${expect ?? m.id}`);
    }
    if (role === 'resp') {
      home = m.home;
      path = m.path;
      ch.sendMessage({ t: 'hello', id: self, path, home });
    }
    const fresh = new Link(m.id, ch, path, endpoint, role === 'init' ? self : m.id, home);
    const kept = this.register(fresh);
    if (kept === fresh) {
      link = fresh;
      for (const q of queue.splice(0)) this.onLinkMessage(fresh, q);
    }
    return kept;
  }

  private async accept(stream: Duplex, endpoint: string): Promise<void> {
    stream.on('error', () => {});
    if (this.closed) return void stream.destroy();
    try {
      await this.establish(stream, 'resp', null, 'direct', endpoint, false);
    } catch (e) {
      this.log.debug('incoming peer link refused', { endpoint, reason: (e as Error).message });
    }
  }

  /** Is link `a` preferred to link `b` (to the same member)? Both ends decide alike. */
  private better(a: Link, b: Link): boolean {
    if ((a.path === 'relay') !== (b.path === 'relay')) return b.path === 'relay';
    if (a.initiatorId !== b.initiatorId) return a.initiatorId < b.initiatorId;
    return true;
  }

  private register(l: Link): Link {
    if (this.closed) {
      l.ch.close(); // set up while we shut down: never kept (it would keep the process alive)
      throw new Error('shutting down');
    }
    const old = this.links.get(l.member);
    if (old && !old.ch.isClosed) {
      if (!this.better(l, old)) {
        l.ch.close();
        old.home ||= l.home;
        this.wake(old);
        return old;
      }
      l.home ||= old.home;
    }
    this.links.set(l.member, l);
    this.stats.opened++;
    const timer = this.deathTimers.get(l.member);
    if (timer) {
      clearTimeout(timer);
      this.deathTimers.delete(l.member);
    }
    l.ch.on('close', () => this.onLinkClosed(l));
    if (old && !old.ch.isClosed) old.ch.close();
    this.enforceBound(l);
    this.stats.maxOpen = Math.max(this.stats.maxOpen, this.links.size);
    this.wake(l);
    this.emit('change');
    return l;
  }

  private waitInbound(id: number, ms: number): Promise<Link> {
    return new Promise((resolve, reject) => {
      let set = this.waiters.get(id);
      if (!set) this.waiters.set(id, (set = new Set()));
      const fn = (l: Link) => {
        clearTimeout(t);
        resolve(l);
      };
      const t = setTimeout(() => {
        set!.delete(fn);
        reject(new Error(`member ${id} did not connect within ${ms} ms`));
      }, ms);
      set.add(fn);
    });
  }

  private wake(l: Link): void {
    const set = this.waiters.get(l.member);
    if (!set) return;
    this.waiters.delete(l.member);
    for (const fn of set) fn(l);
  }

  private onLinkClosed(l: Link): void {
    for (const p of l.pings.values()) p.done?.(-1);
    if (this.links.get(l.member) !== l) return;
    this.links.delete(l.member);
    this.stats.closed++;
    this.emit('change');
    if (this.closed) return;
    // A member homed on us lost its link while the seed is down: we are the one to declare it dead.
    if (l.home && l.initiatorId === l.member && !this.host.seedConnected() && this.host.member(l.member)) {
      this.deathTimers.set(
        l.member,
        setTimeout(() => {
          this.deathTimers.delete(l.member);
          if (this.links.has(l.member) || this.host.seedConnected()) return;
          if (this.host.forget(l.member, 'dead')) {
            this.log.info('member died (its home link is gone and the seed is down)', { id: l.member });
            void this.gossipLeft(l.member, 'dead', null, true);
          }
        }, HOME_DEATH_GRACE_MS),
      );
    }
  }

  private enforceBound(keep: Link | null): void {
    let guard = this.links.size;
    const now = Date.now();
    while (this.links.size > this.maxLinks && guard-- > 0) {
      let victim: Link | null = null;
      for (const l of this.links.values()) {
        if (l === keep || l.home || now - l.since < LINK_MIN_AGE_MS) continue;
        if (!victim || l.lastUsed < victim.lastUsed) victim = l;
      }
      if (!victim) return;
      this.log.debug('closing the least recently used link', { peer: victim.member });
      victim.ch.close();
    }
  }

  // ---- messages --------------------------------------------------------------------------------------------

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
        this.onPunch(l.member, m);
        break;
      case 'vnet':
        l.lastUsed = Date.now();
        this.emit('vnet', l.member, m.payload);
        break;
      case 'fwd':
        this.onFwd(m, l.member);
        break;
      case 'relay':
        l.lastUsed = Date.now();
        this.onRelay(m, l.member);
        break;
      case 'left':
        if (m.id === this.host.selfId()) break;
        if (this.host.forget(m.id, m.reason)) void this.gossipLeft(m.id, m.reason, l.member, false);
        break;
      default:
        this.log.debug('ignoring a message on a peer link', { peer: l.member, type: m.t });
    }
  }

  /** A `fwd` from the seed (via null) or from a linked member. */
  onFwd(m: Extract<Message, { t: 'fwd' }>, via: number | null): void {
    const self = this.host.selfId();
    if (m.to !== self) {
      // We carry it one hop for a member linked to us; the sender is the authenticated link's member.
      if (via === null) return;
      const l = this.links.get(m.to);
      if (l) l.ch.sendMessage({ t: 'fwd', to: m.to, from: via, body: m.body });
      return;
    }
    const from = via === null ? m.from : m.from || via;
    let inner: Message;
    try {
      inner = decodeMessage(m.body);
    } catch (e) {
      this.log.warn('dropping a malformed forwarded message', { from, reason: (e as Error).message });
      return;
    }
    if (inner.t === 'punch') this.onPunch(from, inner);
    else if (inner.t === 'vnet') this.emit('vnet', from, inner.payload);
    else this.log.debug('ignoring a forwarded message', { from, type: inner.t });
  }

  /** A `relay` from the seed (via null) or from a linked member. */
  onRelay(m: Extract<Message, { t: 'relay' }>, via: number | null): void {
    if (via !== null && m.hop) {
      // We are the relay: carry it to the far end, naming the sender.
      const to = this.links.get(m.peer);
      const back = this.links.get(via);
      if (to && m.peer !== via) {
        to.lastUsed = Date.now();
        to.ch.sendMessage({ t: 'relay', peer: via, sid: m.sid, data: m.data, end: m.end, hop: false });
      } else if (!m.end) back?.ch.sendMessage({ t: 'relay', peer: m.peer, sid: m.sid, data: new Uint8Array(0), end: true, hop: false });
      return;
    }
    const key = `${m.peer}:${m.sid}`;
    const s = this.relays.get(key);
    if (s) return s.deliver(m.data, m.end);
    if (m.end || !this.host.member(m.peer)) return;
    // A new relayed link from m.peer: answer through the same relay.
    const send =
      via === null
        ? (x: Message) => this.host.toSeed(x)
        : (x: Message) => {
            const l = this.links.get(via);
            return !!l && (l.ch.sendMessage(x) || !l.ch.isClosed);
          };
    const stream = this.relayStream(m.peer, m.sid, send, via !== null);
    const name = via === null ? 'seed' : this.host.member(via)?.name ?? String(via);
    this.establish(stream, 'resp', m.peer, 'relay', `via ${name}`, false).catch((e: Error) =>
      this.log.debug('relayed link refused', { peer: m.peer, reason: e.message }),
    );
    stream.deliver(m.data, false);
  }

  private onPunch(from: number, m: Extract<Message, { t: 'punch' }>): void {
    switch (m.phase) {
      case 'ack': {
        const a = this.acks.get(m.sid);
        if (a && m.ep) a.resolve(m.ep);
        return;
      }
      case 'fail': {
        this.acks.get(m.sid)?.reject(new Error('the peer cannot punch'));
        return;
      }
      case 'dial': {
        const b = this.host.member(from);
        const ep = m.ep ?? (b?.ext && b.lport ? { ip: b.ext.ip, port: b.lport } : null);
        if (!b || !ep) return;
        this.dialAndGreet(b, ep, 'direct', DIRECT_CONNECT_TIMEOUT_MS, false).catch((e: Error) =>
          this.log.info('could not dial back a member', { peer: b.name, reason: e.message }),
        );
        return;
      }
      case 'req': {
        const b = this.host.member(from);
        if (b && m.path === 'hairpin') return void this.answerHairpin(b, m.sid);
        if (!b || !m.ep) return;
        void this.answerPunch(b, m.sid, m.ep, m.path);
      }
    }
  }

  /**
   * Hairpin through a shared gateway. A simultaneous open does not work here: the neighbour's SYN is
   * delivered at once through the gateway, and a socket that is not connecting yet answers it with a reset
   * (the two connects would have to overlap within microseconds). So the answering side listens: it opens
   * the gateway's mapping for a fresh port (one connection from it to a public member, dropped at once),
   * listens on that port, and the requester connects to its public endpoint.
   */
  private async hairpin(b: MemberInfo): Promise<Link> {
    const sid = (Math.random() * 2 ** 32) >>> 0;
    const ack = new Promise<Endpoint>((resolve, reject) => this.acks.set(sid, { resolve, reject }));
    try {
      await this.signal(b.id, { t: 'punch', sid, phase: 'req', ep: null, path: 'hairpin' });
      const theirs = await withTimeout(ack, SIGNAL_TIMEOUT_MS, 'hairpin answer');
      // A reset comes from the gateway itself while it has not learnt the neighbour's mapping yet (its priming
      // SYN may leave late on a loaded host): try again until PUNCH_TIMEOUT_MS.
      const deadline = Date.now() + PUNCH_TIMEOUT_MS;
      let stream: Duplex | null = null;
      for (let i = 0; !stream; i++) {
        try {
          stream = (await this.opts.io.dial(theirs, Math.max(1, deadline - Date.now()))).stream;
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ECONNREFUSED' || Date.now() + HAIRPIN_REDIAL_MS >= deadline) throw e;
          await new Promise((r) => setTimeout(r, HAIRPIN_REDIAL_MS));
        }
      }
      return await this.establish(stream, 'init', b.id, 'hairpin', epText(theirs), false);
    } finally {
      this.acks.delete(sid);
    }
  }

  private async answerHairpin(b: MemberInfo, sid: number): Promise<void> {
    const fail = () => this.signal(b.id, { t: 'punch', sid, phase: 'fail', ep: null, path: 'hairpin' }).catch(() => {});
    let port: number;
    try {
      const probe = this.opts.io.bindFresh();
      port = probe.port;
      probe.close();
    } catch {
      return void (await fail());
    }
    const mine = this.predict(port);
    if (!mine) return void (await fail());
    await this.prime(port);
    const accepted = this.opts.io.acceptOnce(port, PUNCH_TIMEOUT_MS + SIGNAL_TIMEOUT_MS);
    accepted.catch(() => {});
    try {
      await this.signal(b.id, { t: 'punch', sid, phase: 'ack', ep: mine, path: 'hairpin' });
      const stream = await accepted;
      const r = stream as { remoteAddress?: string; remotePort?: number };
      const from = r.remoteAddress ? `${r.remoteAddress.replace(/^::ffff:/, '')}:${r.remotePort}` : epText(mine);
      await this.establish(stream, 'resp', b.id, 'hairpin', from, false);
    } catch (e) {
      this.log.info('hairpin failed', { peer: b.name, reason: (e as Error).message });
    }
  }

  private async answerPunch(b: MemberInfo, sid: number, theirs: Endpoint, path: PathKind): Promise<void> {
    let sock;
    try {
      sock = this.opts.io.bindFresh();
    } catch (e) {
      await this.signal(b.id, { t: 'punch', sid, phase: 'fail', ep: null, path }).catch(() => {});
      return;
    }
    const mine = this.predict(sock.port);
    if (!mine) {
      sock.close();
      await this.signal(b.id, { t: 'punch', sid, phase: 'fail', ep: null, path }).catch(() => {});
      return;
    }
    try {
      await this.signal(b.id, { t: 'punch', sid, phase: 'ack', ep: mine, path });
      // Our SYN goes first: the far NAT drops it, but it opens our mapping for theirs (no retransmission).
      const stream = await this.opts.io.connectBound(sock, theirs, PUNCH_TIMEOUT_MS);
      await this.establish(stream, this.host.selfId() < b.id ? 'init' : 'resp', b.id, path, epText(theirs), false);
    } catch (e) {
      this.log.info('punch failed', { peer: b.name, path, reason: (e as Error).message });
    } finally {
      sock.close();
    }
  }

  /**
   * Hairpin: a gateway maps a public port back to us only once it has seen traffic from that port leave
   * toward the internet; until then a neighbour's SYN to our public endpoint meets the gateway itself (a
   * reset). So before announcing the port, send one connection from it to a public member and drop it.
   */
  private async prime(port: number): Promise<void> {
    let target = this.host.seedConnected() ? this.primeTo : null;
    if (!target) {
      const h = this.homeOf(this.host.selfId());
      const m = h !== null ? this.host.member(h) : undefined;
      if (m?.ext && m.lport) target = { ip: m.ext.ip, port: m.lport };
    }
    if (!target) return;
    try {
      const { stream } = await this.opts.io.dial(target, HAIRPIN_PRIME_MS, port);
      stream.destroy();
    } catch {
      /* the SYN left: that is all the gateway needed */
    }
  }

  /** Delivers a set-up or vnet message to `to`: on its link, else through the seed, else through its home. */
  async signal(to: number, inner: Message): Promise<void> {
    const l = this.links.get(to);
    if (l && !l.ch.isClosed) {
      l.ch.sendMessage(inner);
      return;
    }
    const self = this.host.selfId();
    const body = encodeMessage(inner);
    if (this.host.toSeed({ t: 'fwd', to, from: self, body })) return;
    const h = this.homeOf(to);
    if (h === null || h === self || h === to) throw new Error(`no way to reach member ${to}: the seed is down and it has no home`);
    const hl = await this.ensure(h);
    hl.ch.sendMessage({ t: 'fwd', to, from: self, body });
  }

  /** Tells everyone a member is gone: every link, and (when we learnt it first) every public member. */
  private async gossipLeft(id: number, reason: 'leave' | 'dead', except: number | null, origin: boolean): Promise<void> {
    const m: Message = { t: 'left', id, reason };
    for (const l of this.links.values()) if (l.member !== except && l.member !== id) l.ch.sendMessage(m);
    if (!origin) return;
    for (const x of [...this.host.members()]) {
      if (x.nat !== 'open' || !x.lport || x.id === this.host.selfId() || x.id === id || this.links.has(x.id)) continue;
      try {
        (await this.ensure(x.id)).ch.sendMessage(m);
      } catch {
        /* it will hear from another */
      }
    }
  }

  /** Leaving while the seed may be down: tell the members we are linked to (our home floods it). */
  announceLeave(): void {
    const self = this.host.selfId();
    for (const l of this.links.values()) l.ch.sendMessage({ t: 'left', id: self, reason: 'leave' });
  }

  /** Closes every link (tests: links must reopen, e.g. without the seed). Home links come back by themselves. */
  closeLinks(): number {
    const n = this.links.size;
    for (const l of [...this.links.values()]) l.ch.close();
    return n;
  }

  /** The seed said a member is gone: drop its link. */
  memberGone(id: number): void {
    this.links.get(id)?.ch.close();
  }

  // ---- homes, keepalives, upgrades ------------------------------------------------------------------------

  /** The `open` member that keeps a link to `id` (rendezvous hashing over the open members), or null. */
  homeOf(id: number): number | null {
    let best: number | null = null;
    let bestScore = -1;
    for (const m of this.host.members()) {
      if (m.nat !== 'open' || !m.lport || m.id === id) continue;
      const s = score(id, m.id);
      if (s > bestScore) {
        best = m.id;
        bestScore = s;
      }
    }
    return best;
  }

  private maintainHome(): void {
    const self = this.host.selfId();
    if (!self) return;
    const h = this.homeOf(self);
    if (h !== this.homeId) {
      const old = this.homeId !== null ? this.links.get(this.homeId) : undefined;
      if (old && old.initiatorId === self) old.home = false;
      this.homeId = h;
    }
    if (h === null) return;
    const l = this.links.get(h);
    if (l) {
      l.home = true;
      return;
    }
    if (this.opening.has(h) || Date.now() < this.nextHomeTry) return;
    this.nextHomeTry = Date.now() + HOME_RETRY_MS;
    this.ensure(h, true).then(
      (x) => (x.home = true),
      (e: Error) => this.log.debug('cannot reach our home', { home: h, reason: e.message }),
    );
  }

  private pingLink(l: Link): Promise<number> {
    return new Promise((resolve, reject) => {
      const n = ++l.n;
      l.pings.set(n, { t0: Date.now(), done: (rtt) => (rtt < 0 ? reject(new Error('the link closed')) : resolve(rtt)) });
      l.ch.sendMessage({ t: 'ping', n });
    });
  }

  private tick(): void {
    if (this.closed) return;
    const now = Date.now();
    for (const l of [...this.links.values()]) {
      if (now - l.lastHeard > LINK_DEAD_AFTER_MS) {
        l.ch.close(`peer link to member ${l.member} silent for ${LINK_DEAD_AFTER_MS} ms`);
        continue;
      }
      if (!l.home && now - l.lastUsed > LINK_IDLE_MS) {
        l.ch.close();
        continue;
      }
      for (const [n, p] of l.pings) if (now - p.t0 > LINK_DEAD_AFTER_MS) l.pings.delete(n);
      const n = ++l.n;
      l.pings.set(n, { t0: now });
      l.ch.sendMessage({ t: 'ping', n });
      if (l.path === 'relay' && now - l.since > this.upgradeMs && !this.upgrading.has(l.member)) void this.upgrade(l);
    }
    this.enforceBound(null);
    this.maintainHome();
  }

  /** Tries the direct paths of a relayed link again; a success replaces the relayed link. */
  private async upgrade(l: Link): Promise<void> {
    const b = this.host.member(l.member);
    if (!b) return;
    const attempts = this.plan(b).filter((a) => a.path !== 'relay');
    if (!attempts.length) return;
    this.upgrading.add(l.member);
    try {
      for (const a of attempts) {
        try {
          const x = await withTimeout(a.run(), LINK_OPEN_TIMEOUT_MS, 'upgrade');
          if (x.path !== 'relay') {
            this.log.info('relayed link upgraded', { peer: b.name, path: x.path });
            return;
          }
        } catch {
          /* next */
        }
      }
    } finally {
      // Try again only after another RELAY_UPGRADE_MS.
      setTimeout(() => this.upgrading.delete(l.member), this.upgradeMs).unref();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    for (const t of this.deathTimers.values()) clearTimeout(t);
    for (const l of [...this.links.values()]) l.ch.close();
    for (const s of [...this.relays.values()]) s.destroy();
    await this.listener?.close();
  }
}

/**
 * The connection broker of the virtual network: it answers the shim's requests (docs/shim-protocol.md) so that
 * a program's own kernel socket connects end to end to the far member, and plays the far side of those
 * connections for this member's programs. The route to each member is decided in routes.ts.
 *
 *  - direct: the program's socket connects to the far member's address at the virtual port; the far program's
 *    listener accepts it. The client's broker tells the far broker (`open`) which endpoint the connection
 *    comes from, so the far program's accept()/getpeername() show the client's virtual address and port.
 *  - punched: the client picks a port M in the far member's local range and connects to the far NAT's
 *    predicted external port for M, at once (no network wait inside connect()); the far broker binds M and
 *    connects back to the client's predicted external endpoint: a TCP simultaneous open through both NATs.
 *    The far broker hands the punched socket into its program's accept() (handoff.ts). Nothing listening: it
 *    resets the connection and reports ECONNREFUSED, which the shim gives as the socket's error.
 *  - relayed: through an `open` member's relay (relay.ts), when neither of the above exists.
 *
 * Everything that touches the network is behind `VnetNetwork` (messages to members, predictions, links) and
 * `SocketOps` (the addon), so the logic runs in memory in tests.
 */
import fs from 'node:fs';
import os from 'node:os';
import type { Endpoint, MemberInfo, PathKind } from '../wire/messages';
import { decideRoute, formatRoutes, mappedPort, pickPort, type Route } from './routes';
import { Handoffs, type WakeOps } from './handoff';
import { DataRelay, type KernelSplice } from './relay';
import { directSources, formatSources, sourceMatches } from './sources';
import { logger } from '../util/log';

const log = logger('vnet');
const E = os.constants.errno;

/** How long an accept() of a direct connection waits for the client's announcement (sent with its SYN). */
export const ANNOUNCE_WAIT_MS = 1_000;
/**
 * The same for a loopback peer that is not one of our hand-offs: on one host (loopback mode) announcements
 * arrive within a millisecond, and a native local client should not wait long for a name it will not get.
 */
export const LOOPBACK_ANNOUNCE_WAIT_MS = 200;
/** How long the far side of a punched connection tries before reporting ETIMEDOUT (SYN retries are 1 s+). */
export const PUNCH_TIMEOUT_MS = 5_000;
/**
 * The far side's SYN can reach an `open` client before the client's own SYN left (the announcement raced
 * the shim's connect); the client's kernel then resets it. Punch again, this many times, this far apart.
 */
export const PUNCH_RETRIES = 5;
export const PUNCH_RETRY_MS = 40;
/**
 * When nothing listens on a punched connection's port, the far broker says so first and completes (then
 * resets) the TCP handshake this much later, so that the client's agent knows the outcome before the
 * client's kernel reports the socket connected (getsockopt(SO_ERROR) asks without waiting).
 */
export const REFUSE_NOTICE_MS = 50;
/**
 * A punch request (`open` with a port) is sent again this often until the far side answers, at most
 * OPEN_RESENDS times: a message in flight on a peer link that is being replaced (two members opening links to
 * each other at once keep one) can be lost. The far side handles each request once (by its id). A direct
 * connection's announcement, which gets no answer, is sent twice for the same reason.
 */
export const OPEN_RESEND_MS = 400;
export const OPEN_RESENDS = 4;
/** How long a far side remembers the punch requests it handled (resends arrive within a few seconds). */
const HANDLED_TTL_MS = 10_000;
/** How long a client waits for a relay to open a port for it, before trying another relay. */
export const RELAY_REQUEST_TIMEOUT_MS = 3_000;
/** Relays tried for one connection. */
export const RELAYS_TRIED = 2;
/** Announcements and outcomes nobody asked for are forgotten after this long. */
export const STALE_MS = 30_000;
/**
 * Bounds of what the shim's socket feeds (a program, buggy or hostile, sends what it likes): programs recorded
 * by HELLO (oldest forgotten), the length of a program's name, accept() calls waiting for an announcement at
 * once (beyond it: answered at once, unnamed), connections with a pending outcome (beyond it: the oldest
 * settled ETIMEDOUT). Each is far above what one function runs (1024 descriptors).
 */
export const MAX_SHIM_PROGRAMS = 1_024;
export const MAX_PROGRAM_NAME = 64;
export const MAX_ACCEPT_WAITERS = 4_096;
export const MAX_PENDING_OUTCOMES = 8_192;

/** Messages between the brokers of members (carried by the control plane; see messages.ts). */
export type VnetMessage =
  | { k: 'open'; cid: string; vport: number; cport: number; cext: Endpoint | null; punch: number | null }
  | { k: 'result'; cid: string; errno: number }
  | { k: 'relay-req'; cid: string; to: number; vport: number; cport: number }
  | { k: 'relay-ok'; cid: string; port: number; ip: string; errno: number }
  | { k: 'relay-open'; cid: string; from: number; vport: number; cport: number; relay: Endpoint; token: Uint8Array }
  | { k: 'relay-cancel'; cid: string; errno?: number };

export interface VnetNetwork {
  self(): { id: number; addr: string } | null;
  members(): MemberInfo[];
  /** This member's predicted external endpoint for its local port (null: unpredictable). */
  predictOwn(localPort: number): Endpoint | null;
  /** The path of the open peer link to member `id`, if there is one. */
  linkPath(id: number): PathKind | undefined;
  /** Opens (or uses) the link to member `id` and returns its path (first contact: one network round trip). */
  ensureLink(id: number): Promise<PathKind>;
  /** Sends to member `to`; `SEED` (0) is the seed's relay. */
  send(to: number, msg: VnetMessage): void;
  /** The seed's address as this member reaches it, when the seed can relay (null: not connected). */
  seedIp(): string | null;
}

/** The id that stands for the seed in broker messages (member ids start at 1). */
export const SEED = 0;

/** The socket operations the broker needs (the native addon; a fake in tests): a hand-off's, and the relay's. */
export interface SocketOps extends WakeOps {
  /** The kernel relay (relay.ts, KernelSplice); absent in memory tests. */
  splice?: KernelSplice['splice'];
  spliceActive?: KernelSplice['spliceActive'];
  spliceAbortAll?: KernelSplice['spliceAbortAll'];
}

export interface ConnectAnswer {
  errno: number;
  real?: Endpoint;
  connId?: bigint;
}

export interface AcceptAnswer {
  errno: number;
  vaddr?: string;
  vport?: number;
  /** A descriptor to hand to the program (punched or relayed connection), owned by the caller once returned. */
  fd?: number;
}

interface Outcome {
  errno: number | null;
  waiters: Array<(e: number) => void>;
  at: number;
  /** The member connected to: its death settles the outcome at once (EHOSTUNREACH). */
  far: number;
  cid: string;
}

export interface BrokerStats {
  connects: number;
  direct: number;
  punched: number;
  relayed: number;
  refused: number;
  handedOff: number;
  /** ACCEPTED requests: accepted connections the shim could not name from its route table. */
  acceptsAsked: number;
}

function isLoopback(ip: string): boolean {
  return ip.startsWith('127.');
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export class Broker {
  private readonly listens = new Map<number, number>();
  private readonly outcomes = new Map<bigint, Outcome>();
  private readonly byCid = new Map<string, bigint>();
  private readonly expected = new Map<string, { vaddr: string; vport: number; at: number }>();
  private readonly expectWaiters = new Map<string, Array<() => void>>();
  private acceptWaiting = 0;
  private readonly relayWaiters = new Map<string, (m: Extract<VnetMessage, { k: 'relay-ok' }>) => void>();
  private readonly handoffs: Handoffs;
  readonly relay: DataRelay;
  private nextConn = 1n;
  private readonly rotation = new Map<string, number>();
  private readonly stat = { connects: 0, direct: 0, punched: 0, relayed: 0, refused: 0, acceptsAsked: 0 };
  /** Programs whose shim reported in (pid -> program name). */
  readonly shims = new Map<number, string>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly netw: VnetNetwork,
    private readonly ops: SocketOps,
  ) {
    this.handoffs = new Handoffs(ops);
    this.relay = new DataRelay(ops.splice ? (ops as Required<SocketOps>) : undefined);
    this.sweeper = setInterval(() => this.sweep(), STALE_MS);
    this.sweeper.unref();
  }

  get stats(): BrokerStats {
    return { ...this.stat, handedOff: this.handoffs.handed };
  }

  hello(pid: number, name: string): void {
    if (!this.shims.has(pid) && this.shims.size >= MAX_SHIM_PROGRAMS) this.shims.delete(this.shims.keys().next().value as number);
    this.shims.set(pid, name.slice(0, MAX_PROGRAM_NAME));
    log.debug('a program loaded the shim', { pid, program: name });
  }

  listen(port: number): void {
    this.listens.set(port, (this.listens.get(port) ?? 0) + 1);
  }
  unlisten(port: number): void {
    const n = (this.listens.get(port) ?? 0) - 1;
    if (n > 0) this.listens.set(port, n);
    else this.listens.delete(port);
  }

  private member(vaddr: string): MemberInfo | undefined {
    return this.netw.members().find((m) => m.addr === vaddr);
  }
  private byId(id: number): MemberInfo | undefined {
    return this.netw.members().find((m) => m.id === id);
  }
  private me(): MemberInfo | undefined {
    const self = this.netw.self();
    return self ? this.byId(self.id) : undefined;
  }

  /** The route to member `far` now, from what is known without a network wait. */
  route(far: MemberInfo): Route {
    return decideRoute(this.me(), far, this.netw.linkPath(far.id));
  }

  /**
   * The route table for the shim (rewritten by the caller whenever members or links change). Direct routes
   * are `direct-quiet` when the far side names us by our address: the shim then tells us nothing, and
   * `stats.direct` does not count those connections.
   */
  routes(): string {
    const me = this.me();
    const quiet = !!me && this.namedByAddress(me);
    const members = this.netw.members();
    return (
      formatRoutes(
        members.map((m) => {
          const route = this.route(m);
          // Not over a LAN (a private address): the far side needs our announcement there.
          if (quiet && route.kind === 'direct' && route.ip === m.ext?.ip) route.quiet = true;
          return { id: m.id, addr: m.addr, route, ext: m.ext?.ip };
        }),
      ) + formatSources(directSources(me, members))
    );
  }

  /**
   * CONNECT: where the program's socket must connect. Direct and punched routes are answered at once. A member
   * on our NAT first gets a peer link, so that its path (`lan` or not) is known; a relayed connection waits for
   * the relay to open a port: those cost a network round trip, the first time or every time.
   */
  async connect(vaddr: string, vport: number, localPort: number): Promise<ConnectAnswer> {
    this.stat.connects++;
    const far = this.member(vaddr);
    if (!far) return { errno: E.EHOSTUNREACH };
    let r = this.route(far);
    // Behind our own NAT, the route depends on whether the LAN reaches it: the link's path says.
    const me = this.me();
    const sameNat = !!me?.ext && me.ext.ip === far.ext?.ip;
    if (r.kind === 'agent' && sameNat && !this.netw.linkPath(far.id)) {
      try {
        await this.netw.ensureLink(far.id);
      } catch (e) {
        log.info('cannot reach the member', { member: far.name, reason: (e as Error).message });
        return { errno: E.EHOSTUNREACH };
      }
      r = this.route(far);
    }
    const connId = this.nextConn++;
    switch (r.kind) {
      case 'direct':
        this.connecting(far, vport, localPort, { ip: r.ip, port: vport }, 0, connId);
        return { errno: 0, real: { ip: r.ip, port: vport }, connId };
      case 'punch': {
        const m = pickPort(r.lo, r.hi);
        const real = { ip: r.ip, port: mappedPort(r, m) };
        log.debug('punched connection', { to: far.name, local: localPort, real: `${real.ip}:${real.port}`, farPort: m });
        this.connecting(far, vport, localPort, real, m, connId);
        return { errno: 0, real, connId };
      }
      case 'agent':
        return this.connectViaRelay(far, vport, localPort, connId);
      default:
        return { errno: E.EHOSTUNREACH };
    }
  }

  private async connectViaRelay(far: MemberInfo, vport: number, localPort: number, connId: bigint): Promise<ConnectAnswer> {
    const self = this.netw.self()!;
    // Open members first (linked ones first: they spread the load), then the seed, the relay of last resort.
    const relays: Array<{ id: number; name: string; ip: string | null }> = this.netw
      .members()
      .filter((m) => m.nat === 'open' && m.ext && m.id !== self.id && m.id !== far.id)
      .sort((a, b) => Number(!!this.netw.linkPath(b.id)) - Number(!!this.netw.linkPath(a.id)) || a.id - b.id)
      .slice(0, RELAYS_TRIED)
      .map((m) => ({ id: m.id, name: m.name, ip: m.ext!.ip }));
    const seedIp = this.netw.seedIp();
    if (seedIp) relays.push({ id: SEED, name: 'the seed', ip: seedIp });
    const cid = `${self.id}:${connId}`;
    for (const r of relays) {
      // The relay says how the far side answered (it has connected to the relay, or refused) right after its
      // relay-ok, on the same link: be ready for that before asking.
      this.pending(connId, cid, far.id);
      const ok = await new Promise<Extract<VnetMessage, { k: 'relay-ok' }> | null>((resolve) => {
        const t = setTimeout(() => {
          this.relayWaiters.delete(cid);
          resolve(null);
        }, RELAY_REQUEST_TIMEOUT_MS);
        this.relayWaiters.set(cid, (m) => {
          clearTimeout(t);
          this.relayWaiters.delete(cid);
          resolve(m);
        });
        this.netw.send(r.id, { k: 'relay-req', cid, to: far.id, vport, cport: localPort });
      });
      if (!ok || ok.errno) {
        log.info('a relay could not take the connection', { relay: r.name, reason: ok ? `errno ${ok.errno}` : 'no answer' });
        continue;
      }
      // The client's socket is accepted by the relay at once, whatever the far side says: so wait for the far
      // side (nothing listening: ECONNREFUSED now, as a native connect would say).
      const errno = await this.result(connId, RELAY_REQUEST_TIMEOUT_MS);
      if (errno === E.EINPROGRESS) {
        log.info('the far member did not answer a relayed connection', { member: far.name });
        this.netw.send(r.id, { k: 'relay-cancel', cid });
        return { errno: E.ETIMEDOUT };
      }
      if (errno) return { errno };
      this.stat.relayed++;
      const ip = ok.ip && ok.ip !== '0.0.0.0' ? ok.ip : r.ip;
      if (!ip) return { errno: E.EHOSTUNREACH };
      return { errno: 0, real: { ip, port: ok.port }, connId };
    }
    log.info('no path to the member: no direct path and no relay answered', { member: far.name, relays: relays.length });
    return { errno: E.EHOSTUNREACH };
  }

  /**
   * CONNECTING: the shim connected from the route table (or we answered CONNECT): tell the far member, so that
   * it names the connection (direct) or punches back from port `punch` (punched). A direct connection's
   * outcome is the kernel's (the program's socket reaches the far program's listener), so none is kept; and
   * when we are an `open` member alone at our address, the far side names the connection from its own route
   * table (or its broker from the member list), so it is not announced at all: a direct connection then costs
   * the agents nothing.
   */
  connecting(far: MemberInfo | string, vport: number, localPort: number, real: Endpoint, punch: number, connId: bigint): void {
    const self = this.netw.self();
    const m = typeof far === 'string' ? this.member(far) : far;
    if (!self || !m) return;
    const cid = `${self.id}:${connId}`;
    const me = this.me();
    let cext: Endpoint | null;
    const overLan = !!me?.ext && me.ext.ip === m.ext?.ip && m.priv.some((p) => p.ip === real.ip) && me.priv.length > 0;
    if (!punch) {
      this.stat.direct++;
      if (!overLan && me && this.namedByAddress(me)) return;
    } else {
      this.stat.punched++;
      this.pending(connId, cid, m.id);
    }
    if (overLan) cext = { ip: me!.priv[0].ip, port: localPort };
    else cext = this.netw.predictOwn(localPort) ?? (punch ? null : { ip: me?.ext?.ip ?? '0.0.0.0', port: 0 });
    const msg: VnetMessage = { k: 'open', cid, vport, cport: localPort, cext, punch: punch || null };
    this.netw.send(m.id, msg);
    let resends = 0;
    const again = () => {
      const o = this.outcomes.get(connId);
      const answered = !punch ? resends >= 1 : !o || o.errno !== null;
      if (answered || resends >= OPEN_RESENDS) return;
      resends++;
      log.debug('sending a connection request again', { to: m.name, cid, resends });
      this.netw.send(m.id, msg);
      setTimeout(again, OPEN_RESEND_MS).unref();
    };
    setTimeout(again, OPEN_RESEND_MS).unref();
  }

  /** Whether a connection straight from member `m` is known by its address alone: `m` is `open` and no other member is at its public address. */
  private namedByAddress(m: MemberInfo): boolean {
    if (m.nat !== 'open' || !m.ext || isLoopback(m.ext.ip)) return false;
    const ip = m.ext.ip;
    return this.netw.members().filter((x) => x.ext?.ip === ip).length === 1;
  }

  /** CONNECT_RESULT: the outcome, once known or after waitMs (EINPROGRESS: not known). */
  result(connId: bigint, waitMs: number): Promise<number> {
    const o = this.outcomes.get(connId);
    if (!o) return Promise.resolve(E.EINPROGRESS);
    if (o.errno !== null) return Promise.resolve(o.errno);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(E.EINPROGRESS), waitMs);
      o.waiters.push((e) => {
        clearTimeout(t);
        resolve(e);
      });
    });
  }

  /** ACCEPTED: who the program's new connection is from; for a punched or relayed one, the real socket. */
  async accepted(_listenPort: number, peer: Endpoint): Promise<AcceptAnswer> {
    this.stat.acceptsAsked++;
    if (isLoopback(peer.ip)) {
      const h = this.handoffs.claim(peer.port);
      if (h) return { errno: 0, vaddr: h.vaddr, vport: h.vport, fd: h.fd };
    }
    const key = `${peer.ip}:${peer.port}`;
    let exp = this.expected.get(key);
    if (!exp) {
      // An `open` member (no NAT: its port is its own) alone at that address needs no announcement: answer at
      // once, so a connection from it costs no wait (time to first byte close to native).
      const at = this.netw.members().find((m) => m.ext?.ip === peer.ip);
      if (at && this.namedByAddress(at)) return { errno: 0, vaddr: at.addr, vport: peer.port };
    }
    if (!exp && !directSources(this.me(), this.netw.members()).some((s) => sourceMatches(s, peer.ip, peer.port))) {
      // No member can be this client (sources.ts): a client from outside the network, not to be kept waiting.
      return { errno: E.ENOENT };
    }
    if (!exp && this.acceptWaiting >= MAX_ACCEPT_WAITERS) {
      log.info('too many accept() calls waiting for announcements: answered unnamed', { peer: key, waiting: this.acceptWaiting });
      return { errno: E.ENOENT };
    }
    if (!exp) {
      this.acceptWaiting++;
      await new Promise<void>((resolve) => {
        const list = this.expectWaiters.get(key) ?? [];
        const done = () => {
          clearTimeout(t);
          // The waiter leaves the table whichever way it ends: an unanswered one must not stay (memory).
          const i = list.indexOf(done);
          if (i >= 0) list.splice(i, 1);
          if (list.length === 0 && this.expectWaiters.get(key) === list) this.expectWaiters.delete(key);
          resolve();
        };
        const t = setTimeout(done, isLoopback(peer.ip) ? LOOPBACK_ANNOUNCE_WAIT_MS : ANNOUNCE_WAIT_MS);
        list.push(done);
        this.expectWaiters.set(key, list);
      });
      this.acceptWaiting--;
      exp = this.expected.get(key);
    }
    if (!exp) {
      // A client whose external port could not be predicted announced its address only.
      const anyKey = `${peer.ip}:0`;
      exp = this.expected.get(anyKey);
      if (exp) this.expected.delete(anyKey);
    } else this.expected.delete(key);
    if (!exp) {
      log.info('an accepted connection was not announced by any member: left as it is', { peer: key, known: [...this.expected.keys()].join(',') });
      return { errno: E.ENOENT };
    }
    return { errno: 0, vaddr: exp.vaddr, vport: exp.vport };
  }

  /** RESOLVE: the members providing a service (or a member by name), rotated on each lookup. */
  resolve(name: string): string[] {
    const n = name.endsWith('.boxer') ? name.slice(0, -6) : name;
    const ms = this.netw.members();
    const byName = ms.find((m) => m.name === n);
    if (byName) return [byName.addr];
    const addrs = ms.filter((m) => m.services.includes(n)).sort((a, b) => a.id - b.id).map((m) => m.addr);
    if (!addrs.length) return [];
    const r = (this.rotation.get(n) ?? 0) % addrs.length;
    this.rotation.set(n, r + 1);
    return [...addrs.slice(r), ...addrs.slice(0, r)];
  }

  /** A message from another member's broker. */
  onMessage(from: number, msg: VnetMessage): void {
    switch (msg.k) {
      case 'result':
        return this.settle(msg.cid, msg.errno);
      case 'relay-ok':
        this.relayWaiters.get(msg.cid)?.(msg);
        return;
      case 'relay-req':
        void this.serveRelay(from, msg);
        return;
      case 'relay-open':
        void this.acceptRelayed(from, msg);
        return;
      case 'relay-cancel':
        this.relay.cancel(msg.cid, msg.errno);
        return;
      case 'open':
        break;
    }
    const client = this.byId(from);
    if (!client) return;
    if (msg.punch === null) {
      // Direct: remember where it comes from so that accept() can name it.
      const ext = msg.cext ?? { ip: client.ext?.ip ?? '0.0.0.0', port: 0 };
      const key = `${ext.ip}:${ext.port}`;
      log.debug('a member announced a connection', { from: client.name, endpoint: key, vport: msg.vport });
      this.expected.set(key, { vaddr: client.addr, vport: msg.cport, at: Date.now() });
      for (const w of [...(this.expectWaiters.get(key) ?? [])]) w();
      this.expectWaiters.delete(key);
      return;
    }
    void this.punch(from, client, msg);
  }

  /** Records a connection whose outcome the far side (or its relay) will tell; bounded (MAX_PENDING_OUTCOMES). */
  private pending(connId: bigint, cid: string, far: number): void {
    if (this.outcomes.size >= MAX_PENDING_OUTCOMES) {
      const [oldId, old] = this.outcomes.entries().next().value as [bigint, Outcome];
      if (old.errno === null) this.settle(old.cid, E.ETIMEDOUT);
      this.outcomes.delete(oldId);
    }
    this.outcomes.set(connId, { errno: null, waiters: [], at: Date.now(), far, cid });
    this.byCid.set(cid, connId);
  }

  /**
   * The member list changed: every connection still waiting for the outcome from a member that is gone (dead
   * or left) fails now with EHOSTUNREACH, as a native connect to a host that vanished, instead of waiting for
   * an answer that cannot come.
   */
  membersChanged(): number {
    const ids = new Set(this.netw.members().map((m) => m.id));
    let failed = 0;
    for (const o of [...this.outcomes.values()]) {
      if (o.errno === null && !ids.has(o.far)) {
        this.settle(o.cid, E.EHOSTUNREACH);
        failed++;
      }
    }
    if (failed) log.info('failed the pending connections to a member that is gone', { connections: failed });
    return failed;
  }

  private settle(cid: string, errno: number): void {
    const connId = this.byCid.get(cid);
    if (connId === undefined) return;
    this.byCid.delete(cid);
    const o = this.outcomes.get(connId);
    if (!o) return;
    o.errno = errno;
    for (const w of o.waiters.splice(0)) w(errno);
  }

  /** The far side of a punched connection: simultaneous open from port `punch`, then the hand-off. */
  private readonly handled = new Map<string, number>();

  private async punch(from: number, client: MemberInfo, msg: Extract<VnetMessage, { k: 'open' }>): Promise<void> {
    // Each request once: it may come again (see OPEN_RESEND_MS).
    const now = Date.now();
    if (this.handled.has(msg.cid)) return;
    this.handled.set(msg.cid, now);
    for (const [cid, at] of this.handled) if (now - at > HANDLED_TTL_MS) this.handled.delete(cid);
    const reply = (errno: number) => this.netw.send(from, { k: 'result', cid: msg.cid, errno });
    if (!msg.cext || msg.punch === null) return reply(E.EHOSTUNREACH);
    log.debug('punching back toward a client', { client: client.name, from: msg.punch, to: `${msg.cext.ip}:${msg.cext.port}`, vport: msg.vport });
    const listening = this.listens.has(msg.vport);
    if (!listening) {
      reply(E.ECONNREFUSED);
      await sleep(REFUSE_NOTICE_MS);
    }
    let fd = -1;
    for (let attempt = 0; ; attempt++) {
      try {
        fd = this.ops.tcpSocket();
        this.ops.bind(fd, '0.0.0.0', msg.punch);
        if (!this.ops.connectStart(fd, msg.cext.ip, msg.cext.port)) await this.ops.connectWait(fd, PUNCH_TIMEOUT_MS);
        break;
      } catch (e) {
        if (fd >= 0) this.ops.close(fd);
        fd = -1;
        const code = (e as NodeJS.ErrnoException).code ?? '';
        if (code === 'ECONNREFUSED' && attempt < PUNCH_RETRIES) {
          await sleep(PUNCH_RETRY_MS);
          continue;
        }
        log.info('punching toward a client failed', { client: client.name, port: msg.punch, reason: (e as Error).message });
        return listening ? reply(code === 'ETIMEDOUT' ? E.ETIMEDOUT : E.EHOSTUNREACH) : undefined;
      }
    }
    if (!listening) return this.reset(fd);
    await this.handOver(fd, msg.vport, client, msg.cport, reply);
  }

  /** Gives a connected socket to the program listening on `vport`, or resets it when nothing listens there. */
  private async handOver(fd: number, vport: number, client: MemberInfo, cport: number, reply: (errno: number) => void): Promise<boolean> {
    if (this.listens.has(vport)) {
      try {
        await this.handoffs.offer(vport, { fd, vaddr: client.addr, vport: cport });
        // After the program's ACCEPTED has its answer (it may be waiting for this very offer): the client's
        // agent needs the outcome only when its program asks, the program's first byte is waiting now.
        setImmediate(() => reply(0));
        return true;
      } catch (e) {
        log.info('the program stopped listening before the connection was handed over', { port: vport, reason: (e as Error).message });
      }
    }
    // Nothing listens: reset the connection, as a closed port would, and say so.
    reply(E.ECONNREFUSED);
    this.reset(fd);
    return false;
  }

  private reset(fd: number): void {
    this.stat.refused++;
    this.ops.setLinger0(fd);
    this.ops.close(fd);
  }

  /** As a relay: open a port for the client and tell the far member where to meet it. */
  private async serveRelay(from: number, msg: Extract<VnetMessage, { k: 'relay-req' }>): Promise<void> {
    const client = this.byId(from);
    const far = this.byId(msg.to);
    const me = this.me();
    const no = (errno: number) => this.netw.send(from, { k: 'relay-ok', cid: msg.cid, port: 0, ip: '', errno });
    if (!client?.ext || !far || !me?.ext || me.nat !== 'open') return no(E.EHOSTUNREACH);
    try {
      const { port, relayPort, token } = await this.relay.prepare(msg.cid, client.ext.ip, (errno) => this.netw.send(from, { k: 'result', cid: msg.cid, errno }));
      this.netw.send(from, { k: 'relay-ok', cid: msg.cid, port, ip: me.ext.ip, errno: 0 });
      this.netw.send(far.id, { k: 'relay-open', cid: msg.cid, from, vport: msg.vport, cport: msg.cport, relay: { ip: me.ext.ip, port: relayPort }, token });
    } catch (e) {
      log.info('cannot relay a connection', { reason: (e as Error).message });
      no(E.EAGAIN);
    }
  }

  /**
   * The far side of a relayed connection: connect out to the relay, then the hand-off. The client hears the
   * outcome from the relay (which it is linked to already): our connection arriving there means we listen; a
   * refusal travels in relay-cancel. Nothing goes to the client directly, which could need a link of its own.
   */
  private async acceptRelayed(relayId: number, msg: Extract<VnetMessage, { k: 'relay-open' }>): Promise<void> {
    const client = this.byId(msg.from);
    const cancel = (errno: number) => this.netw.send(relayId, { k: 'relay-cancel', cid: msg.cid, errno });
    if (!client) return cancel(E.EHOSTUNREACH);
    if (!this.listens.has(msg.vport)) {
      this.stat.refused++;
      return cancel(E.ECONNREFUSED);
    }
    // The seed, listening on every address, leaves it to us: the address we reach it at.
    const relayIp = msg.relay.ip === '0.0.0.0' && relayId === SEED ? this.netw.seedIp() : msg.relay.ip;
    let fd = -1;
    try {
      if (!relayIp) throw new Error('the seed is not reachable');
      fd = this.ops.tcpSocket();
      if (!this.ops.connectStart(fd, relayIp, msg.relay.port)) await this.ops.connectWait(fd, PUNCH_TIMEOUT_MS);
      fs.writeSync(fd, msg.token);
    } catch (e) {
      if (fd >= 0) this.ops.close(fd);
      log.info('cannot reach the relay', { relay: `${msg.relay.ip}:${msg.relay.port}`, reason: (e as Error).message });
      return cancel(E.EHOSTUNREACH);
    }
    // The program stopped listening meanwhile: the socket is reset, and the relay resets the client's half.
    await this.handOver(fd, msg.vport, client, msg.cport, (errno) => errno && cancel(errno));
  }

  private sweep(): void {
    const old = Date.now() - STALE_MS;
    for (const [k, v] of this.expected) if (v.at < old) this.expected.delete(k);
    for (const [k, v] of this.outcomes) if (v.at < old && v.waiters.length === 0) this.outcomes.delete(k);
  }

  close(): void {
    clearInterval(this.sweeper);
    this.handoffs.close();
    this.relay.close();
  }
}

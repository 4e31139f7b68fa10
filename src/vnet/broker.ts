/**
 * The connection broker of the virtual network: it answers the shim's requests (docs/shim-protocol.md) so that
 * a program's own kernel socket connects end to end to the far member, and plays the far side of those
 * connections for the programs of this member.
 *
 * Paths, decided by the client's broker from the far member's NAT kind:
 *  - direct (the far member is `open`, or `unknown`: no NAT discovery, e.g. all on one host): the program's socket connects to
 *    the member's external address at the virtual port; the far program's listener accepts it. The client's
 *    broker tells the far broker which external endpoint the connection comes from (`open`), so that the far
 *    program's accept()/getpeername() show the client's virtual address and port.
 *  - punched (the far member is behind a port-preserving or port-translating NAT): the client's broker picks a
 *    port M in the far member's local port range and answers the shim at once with the far NAT's predicted
 *    external endpoint for M (no network wait inside connect()); it tells the far broker, which binds M and
 *    connects to the client's predicted external endpoint: a TCP simultaneous open through both NATs. The far
 *    broker then wakes the far program's accept() with a loopback connection and hands it the punched socket
 *    (SCM_RIGHTS) in place of the loopback one, before accept() returns. Nothing listening: the far broker
 *    resets the punched connection and reports ECONNREFUSED, which the shim gives as the socket's error.
 *  - none (a port-randomizing NAT on the far side): EHOSTUNREACH; the relay path is not built yet.
 *
 * Everything that touches the network is behind `VnetNetwork` (messages to other members, NAT predictions)
 * and `SocketOps` (the addon), so the logic runs in memory in tests.
 */
import net from 'node:net';
import os from 'node:os';
import type { Endpoint, MemberInfo, NatKind, PathKind } from '../wire/messages';
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
/** Announcements and outcomes nobody asked for are forgotten after this long. */
export const STALE_MS = 30_000;
/** Linux's default ip_local_port_range: where a member's broker binds punching sockets unless told otherwise. */
export const DEFAULT_PORT_RANGE: [number, number] = [32768, 60999];

/** Messages between the brokers of two members (carried by the control plane, CBOR). */
export type VnetMessage =
  | { k: 'open'; cid: string; vport: number; cport: number; cext: Endpoint | null; punch: number | null }
  | { k: 'result'; cid: string; errno: number };

export interface VnetNetwork {
  self(): { id: number; addr: string } | null;
  members(): MemberInfo[];
  /** This member's predicted external endpoint for its local port (null: unpredictable). */
  predictOwn(localPort: number): Endpoint | null;
  /** The path of the open peer link to member `id`, if there is one. */
  linkPath(id: number): PathKind | undefined;
  /** Opens (or uses) the link to member `id` and returns its path (first contact: one network round trip). */
  ensureLink(id: number): Promise<PathKind>;
  send(to: number, msg: VnetMessage): void;
}

/** How the shim connects to a member (a line of the route table, docs/shim-protocol.md). */
export type Route =
  | { kind: 'self' }
  | { kind: 'direct'; ip: string }
  | { kind: 'punch'; ip: string; xor: number; offset: number; lo: number; hi: number }
  | { kind: 'agent' }
  | { kind: 'none' };

/** NAT kinds whose external port for a local port can be predicted. */
function predictable(k: NatKind): boolean {
  return k === 'open' || k === 'preserving' || k === 'translating';
}

/** The far NAT's external port for local port `m` under a route's mapping. */
export function mappedPort(r: { xor: number; offset: number }, m: number): number {
  return ((m ^ r.xor) + r.offset) & 0xffff;
}

/** The route table as the shim reads it: `ID VADDR KIND IP XOR OFFSET LO HI` per member. */
export function formatRoutes(rows: Array<{ id: number; addr: string; route: Route }>): string {
  return rows
    .map(({ id, addr, route: r }) => {
      switch (r.kind) {
        case 'direct':
          return `${id} ${addr} direct ${r.ip} 0 0 0 0`;
        case 'punch':
          return `${id} ${addr} punch ${r.ip} ${r.xor} ${r.offset} ${r.lo} ${r.hi}`;
        default:
          return `${id} ${addr} ${r.kind} 0.0.0.0 0 0 0 0`;
      }
    })
    .map((l) => l + '\n')
    .join('');
}

/** The socket operations the broker needs (the native addon; a fake in tests). */
export interface SocketOps {
  tcpSocket(): number;
  bind(fd: number, ip: string, port: number): void;
  connectStart(fd: number, ip: string, port: number): boolean;
  connectWait(fd: number, timeoutMs: number): Promise<void>;
  setLinger0(fd: number): void;
  close(fd: number): void;
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
  /** A descriptor to hand to the program (punched connection), owned by the caller once returned. */
  fd?: number;
}

interface Outcome {
  errno: number | null;
  waiters: Array<(e: number) => void>;
  at: number;
}

interface Handoff {
  fd: number;
  vaddr: string;
  vport: number;
}

export interface BrokerStats {
  connects: number;
  direct: number;
  punched: number;
  refused: number;
  handedOff: number;
}

function isLoopback(ip: string): boolean {
  return ip.startsWith('127.');
}

export class Broker {
  private readonly listens = new Map<number, number>();
  private readonly outcomes = new Map<bigint, Outcome>();
  private readonly byCid = new Map<string, bigint>();
  private readonly expected = new Map<string, { vaddr: string; vport: number; at: number }>();
  private readonly expectWaiters = new Map<string, Array<() => void>>();
  private readonly handoffs = new Map<number, Handoff>();
  private pendingWakes = 0;
  private nextConn = 1n;
  private readonly rotation = new Map<string, number>();
  readonly stats: BrokerStats = { connects: 0, direct: 0, punched: 0, refused: 0, handedOff: 0 };
  /** Programs whose shim reported in (pid -> program name). */
  readonly shims = new Map<number, string>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly netw: VnetNetwork,
    private readonly ops: SocketOps,
  ) {
    this.sweeper = setInterval(() => this.sweep(), STALE_MS);
    this.sweeper.unref();
  }

  hello(pid: number, name: string): void {
    this.shims.set(pid, name);
    log.info('a program loaded the shim', { pid, program: name });
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

  /**
   * How the shim should connect to member `far` now (without a network wait): the route table's line.
   * `agent` when it takes a step the shim cannot do alone (a link to open first, a relay).
   */
  route(far: MemberInfo): Route {
    const self = this.netw.self();
    if (!self) return { kind: 'none' };
    if (far.id === self.id) return { kind: 'self' };
    if (!far.ext) return { kind: 'none' };
    // `unknown`: no NAT discovery ran (a network on one host's loopback): connect straight to it.
    if (far.nat === 'open' || far.nat === 'unknown') return { kind: 'direct', ip: far.ext.ip };
    const me = this.netw.members().find((m) => m.id === self.id);
    const sameNat = !!me?.ext && me.ext.ip === far.ext.ip;
    const link = this.netw.linkPath(far.id);
    if (sameNat) {
      if (link === 'lan' && far.priv.length) return { kind: 'direct', ip: far.priv[0].ip };
      return { kind: 'agent' };
    }
    const mine = me?.nat ?? 'unknown';
    if (predictable(far.nat) && predictable(mine) && far.map && this.netw.predictOwn(1) !== null) {
      const { xor, offset, lo, hi } = far.map;
      return { kind: 'punch', ip: far.ext.ip, xor, offset, lo, hi };
    }
    return { kind: 'agent' };
  }

  /** The route table for the shim (rewritten by the caller whenever members or links change). */
  routes(): string {
    return formatRoutes(this.netw.members().map((m) => ({ id: m.id, addr: m.addr, route: this.route(m) })));
  }

  /**
   * CONNECT: where the program's socket must connect. Direct and punched routes are answered at once; a member
   * on the same NAT first gets a link (so its path, `lan` or not, is known: first contact costs a round trip).
   */
  async connect(vaddr: string, vport: number, localPort: number): Promise<ConnectAnswer> {
    this.stats.connects++;
    const far = this.member(vaddr);
    if (!far) return { errno: E.EHOSTUNREACH };
    let r = this.route(far);
    if (r.kind === 'agent' && !this.netw.linkPath(far.id)) {
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
        const m = r.lo + Math.floor(Math.random() * (r.hi - r.lo + 1));
        const real = { ip: r.ip, port: mappedPort(r, m) };
        this.connecting(far, vport, localPort, real, m, connId);
        return { errno: 0, real, connId };
      }
      default:
        log.info('no direct path to the member for a connection (relay of connections not available yet)', { member: far.name });
        return { errno: E.EHOSTUNREACH };
    }
  }

  /**
   * CONNECTING: the shim connected from the route table (or we answered CONNECT): tell the far member, so that
   * it names the connection (direct) or punches back from port `punch` (punched).
   */
  connecting(far: MemberInfo | string, vport: number, localPort: number, real: Endpoint, punch: number, connId: bigint): void {
    const self = this.netw.self();
    const m = typeof far === 'string' ? this.member(far) : far;
    if (!self || !m) return;
    const cid = `${self.id}:${connId}`;
    const cext = this.netw.predictOwn(localPort) ?? (punch ? null : { ip: this.ownExtIp() ?? '0.0.0.0', port: 0 });
    if (punch) {
      this.stats.punched++;
      this.outcomes.set(connId, { errno: null, waiters: [], at: Date.now() });
      this.byCid.set(cid, connId);
    } else {
      this.stats.direct++;
      this.outcomes.set(connId, { errno: 0, waiters: [], at: Date.now() });
    }
    void real;
    this.netw.send(m.id, { k: 'open', cid, vport, cport: localPort, cext, punch: punch || null });
  }

  private ownExtIp(): string | null {
    const self = this.netw.self();
    return this.netw.members().find((m) => m.id === self?.id)?.ext?.ip ?? null;
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

  /** ACCEPTED: who the program's new connection is from; for a punched one, the real socket. */
  async accepted(listenPort: number, peer: Endpoint): Promise<AcceptAnswer> {
    if (isLoopback(peer.ip)) {
      for (let waited = 0; !this.handoffs.has(peer.port) && this.pendingWakes > 0 && waited < ANNOUNCE_WAIT_MS; waited += 5) {
        await new Promise((r) => setTimeout(r, 5));
      }
      const h = this.handoffs.get(peer.port);
      if (h) {
        this.handoffs.delete(peer.port);
        this.stats.handedOff++;
        return { errno: 0, vaddr: h.vaddr, vport: h.vport, fd: h.fd };
      }
    }
    const key = `${peer.ip}:${peer.port}`;
    let exp = this.expected.get(key);
    if (!exp) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, isLoopback(peer.ip) ? LOOPBACK_ANNOUNCE_WAIT_MS : ANNOUNCE_WAIT_MS);
        const list = this.expectWaiters.get(key) ?? [];
        list.push(() => {
          clearTimeout(t);
          resolve();
        });
        this.expectWaiters.set(key, list);
      });
      exp = this.expected.get(key);
    }
    if (!exp) {
      // A client whose external port could not be predicted announced its address only.
      const anyKey = `${peer.ip}:0`;
      exp = this.expected.get(anyKey);
      if (exp) this.expected.delete(anyKey);
    } else this.expected.delete(key);
    if (!exp) return { errno: E.ENOENT };
    void listenPort;
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
    if (msg.k === 'result') {
      const connId = this.byCid.get(msg.cid);
      if (connId === undefined) return;
      this.byCid.delete(msg.cid);
      const o = this.outcomes.get(connId);
      if (!o) return;
      o.errno = msg.errno;
      for (const w of o.waiters.splice(0)) w(msg.errno);
      return;
    }
    const client = this.netw.members().find((m) => m.id === from);
    if (!client) return;
    if (msg.punch === null) {
      // Direct: remember where it comes from so accept() can name it.
      const ext = msg.cext ?? { ip: client.ext?.ip ?? '0.0.0.0', port: msg.cport };
      const key = `${ext.ip}:${ext.port}`;
      this.expected.set(key, { vaddr: client.addr, vport: msg.cport, at: Date.now() });
      for (const w of this.expectWaiters.get(key) ?? []) w();
      this.expectWaiters.delete(key);
      return;
    }
    void this.punch(from, client, msg);
  }

  private async punch(from: number, client: MemberInfo, msg: Extract<VnetMessage, { k: 'open' }>): Promise<void> {
    const reply = (errno: number) => this.netw.send(from, { k: 'result', cid: msg.cid, errno });
    if (!msg.cext || msg.punch === null) return reply(E.EHOSTUNREACH);
    let fd = -1;
    try {
      fd = this.ops.tcpSocket();
      this.ops.bind(fd, '0.0.0.0', msg.punch);
      if (!this.ops.connectStart(fd, msg.cext.ip, msg.cext.port)) await this.ops.connectWait(fd, PUNCH_TIMEOUT_MS);
    } catch (e) {
      if (fd >= 0) this.ops.close(fd);
      const code = (e as NodeJS.ErrnoException).code ?? '';
      log.info('punching toward a client failed', { client: client.name, port: msg.punch, reason: (e as Error).message });
      return reply(code === 'ETIMEDOUT' ? E.ETIMEDOUT : E.EHOSTUNREACH);
    }
    if (!this.listens.has(msg.vport)) {
      // Nothing listens: reset the connection, as a closed port would, and say so.
      this.stats.refused++;
      this.ops.setLinger0(fd);
      this.ops.close(fd);
      return reply(E.ECONNREFUSED);
    }
    this.pendingWakes++;
    try {
      const wake = net.connect(msg.vport, '127.0.0.1');
      wake.on('error', () => undefined);
      wake.on('data', () => undefined);
      wake.on('end', () => wake.destroy());
      await new Promise<void>((resolve, reject) => {
        wake.once('connect', resolve);
        wake.once('error', reject);
      });
      this.handoffs.set(wake.localPort!, { fd, vaddr: client.addr, vport: msg.cport });
      setTimeout(() => {
        // Not claimed by an accept(): drop it.
        const h = this.handoffs.get(wake.localPort!);
        if (h && h.fd === fd) {
          this.handoffs.delete(wake.localPort!);
          this.ops.close(fd);
        }
        wake.destroy();
      }, STALE_MS).unref();
      reply(0);
    } catch (e) {
      this.ops.setLinger0(fd);
      this.ops.close(fd);
      reply(E.ECONNREFUSED);
      log.info('the program stopped listening before the connection was handed over', { port: msg.vport, reason: (e as Error).message });
    } finally {
      this.pendingWakes--;
    }
  }

  private sweep(): void {
    const old = Date.now() - STALE_MS;
    for (const [k, v] of this.expected) if (v.at < old) this.expected.delete(k);
    for (const [k, v] of this.outcomes) if (v.at < old && v.waiters.length === 0) this.outcomes.delete(k);
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const h of this.handoffs.values()) this.ops.close(h.fd);
    this.handoffs.clear();
  }
}

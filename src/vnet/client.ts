/**
 * The client side of a program's connection (CONNECT, CONNECTING, CONNECT_RESULT; docs/shim-protocol.md):
 * where its socket connects (the route, routes.ts), what the far member is told (`open`: an announcement
 * for a direct connection, a punch request with the port to punch back from), the relay fallback when no
 * route is direct or punched, and the outcome of the connection as the far side or the relay reports it.
 */
import os from 'node:os';
import type { Endpoint, MemberInfo } from '../wire/messages';
import { CONNECT_BUDGET_MS, MAX_PENDING_OUTCOMES, OPEN_RESEND_MS, OPEN_RESENDS, RELAY_REQUEST_TIMEOUT_MS, RELAYS_TRIED, VNET_STALE_MS } from '../constants';
import { withTimeout } from '../util/async';
import { logger } from '../util/log';
import { relayAsk, type VnetMessage, type VnetOf } from './messages';
import { Members, SEED, type VnetNetwork } from './network';
import { namedByAddress } from './names';
import { decideRoute, mappedPort, pickPort, type Route } from './routes';

const log = logger('vnet');
const E = os.constants.errno;

export interface ConnectAnswer {
  errno: number;
  real?: Endpoint;
  connId?: bigint;
}

interface Outcome {
  errno: number | null;
  waiters: Array<(e: number) => void>;
  at: number;
  /** The member connected to: its death settles the outcome at once (EHOSTUNREACH). */
  far: number;
  cid: string;
}

interface RelayChoice {
  id: number;
  name: string;
  ip: string | null;
}

export class ConnectClient {
  /** Outcomes of punched and relayed connections by connection id (owned by expectOutcome/settle/sweep). */
  private readonly outcomes = new Map<bigint, Outcome>();
  /** Connection ids by the `cid` the far side answers with (owned by expectOutcome/settle). */
  private readonly byCid = new Map<string, bigint>();
  /** Relay requests waiting for their relay-ok, by cid (owned by askRelay). */
  private readonly relayWaiters = new Map<string, (m: VnetOf<'relay-ok'>) => void>();
  private nextConn = 1n;
  readonly stat = { connects: 0, direct: 0, punched: 0, relayed: 0 };
  /** Hears every outcome settled, by connection id (the shim's channel tells a refusal at once). */
  onSettled?: (connId: bigint, errno: number) => void;
  private readonly members: Members;

  constructor(private readonly netw: VnetNetwork) {
    this.members = new Members(netw);
  }

  /** The route to member `far` now, from what is known without a network wait. */
  route(far: MemberInfo): Route {
    return decideRoute(this.members.me(), far, this.netw.linkPath(far.id));
  }

  /** Whether our own direct connections are named by our address at the far side (so need no announcement). */
  quiet(): boolean {
    const me = this.members.me();
    return !!me && namedByAddress(this.netw.members(), me);
  }

  /**
   * CONNECT: where the program's socket must connect. Direct and punched routes are answered at once. A member
   * on our NAT first gets a peer link, so that its path (`lan` or not) is known; a relayed connection waits for
   * the relay to open a port: those cost a network round trip, the first time or every time. All of it within
   * `budgetMs` (the shim's bound for this connect, less a margin): past it, ETIMEDOUT.
   */
  async connect(vaddr: string, vport: number, localPort: number, budgetMs = CONNECT_BUDGET_MS): Promise<ConnectAnswer> {
    this.stat.connects++;
    const deadline = Date.now() + budgetMs;
    const far = this.members.byAddr(vaddr);
    if (!far) return { errno: E.EHOSTUNREACH };
    let r = this.route(far);
    // Behind our own NAT, the route depends on whether the LAN reaches it: the link's path says.
    const me = this.members.me();
    const sameNat = !!me?.ext && me.ext.ip === far.ext?.ip;
    if (r.kind === 'agent' && sameNat && !this.netw.linkPath(far.id)) {
      try {
        await withTimeout(this.netw.ensureLink(far.id), Math.max(1, deadline - Date.now()), 'the first link to a member behind our NAT');
      } catch (e) {
        log.info('cannot reach the member', { member: far.name, reason: (e as Error).message });
        return { errno: Date.now() >= deadline ? E.ETIMEDOUT : E.EHOSTUNREACH };
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
        return this.connectViaRelay(far, vport, localPort, connId, deadline);
      default:
        return { errno: E.EHOSTUNREACH };
    }
  }

  /**
   * The relays to try for a connection to `far`: the far member itself when it is `open` (we cannot be told
   * apart at its address, routes.ts `unnameable`: its agent hands the connection over named), ourselves when
   * we are `open` (the far member connects out to our own relay: no third member, and no seed needed), then
   * other open members (linked ones first: they spread the load), then the seed.
   */
  private relaysFor(far: MemberInfo, selfId: number): RelayChoice[] {
    const relays: RelayChoice[] = this.netw
      .members()
      .filter((m) => m.nat === 'open' && m.ext)
      .sort((a, b) => Number(b.id === far.id) - Number(a.id === far.id) || Number(b.id === selfId) - Number(a.id === selfId) || Number(!!this.netw.linkPath(b.id)) - Number(!!this.netw.linkPath(a.id)) || a.id - b.id)
      .slice(0, RELAYS_TRIED)
      .map((m) => ({ id: m.id, name: m.name, ip: m.ext!.ip }));
    const seedIp = this.netw.seedIp();
    if (seedIp) relays.push({ id: SEED, name: 'the seed', ip: seedIp });
    return relays;
  }

  /** The relay fallback: each relay in turn opens a port for us and tells the far member to meet us there. */
  private async connectViaRelay(far: MemberInfo, vport: number, localPort: number, connId: bigint, deadline: number): Promise<ConnectAnswer> {
    const self = this.netw.self()!;
    const relays = this.relaysFor(far, self.id);
    const cid = `${self.id}:${connId}`;
    const left = () => Math.min(RELAY_REQUEST_TIMEOUT_MS, deadline - Date.now());
    for (const r of relays) {
      if (left() <= 0) break;
      // The relay says how the far side answered (it has connected to the relay, or refused) right after its
      // relay-ok, on the same link: be ready for that before asking.
      this.expectOutcome(cid, connId, far.id);
      const ask = this.netw.seal?.(far.id, relayAsk(cid, far.id, vport, localPort, r.id));
      const ok = await this.askRelay(r.id, { k: 'relay-req', cid, to: far.id, vport, cport: localPort, ...(ask ? { ask } : {}) }, left());
      if (!ok || ok.errno) {
        log.info('a relay could not take the connection', { relay: r.name, reason: ok ? `errno ${ok.errno}` : 'no answer' });
        continue;
      }
      // The client's socket is accepted by the relay at once, whatever the far side says: so wait for the far
      // side (nothing listening: ECONNREFUSED now, as a native connect would say).
      const errno = await this.result(connId, Math.max(0, left()));
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
    if (Date.now() >= deadline) {
      log.info('no relay answered within the connect budget', { member: far.name, relays: relays.length });
      return { errno: E.ETIMEDOUT };
    }
    log.info('no path to the member: no direct path and no relay answered', { member: far.name, relays: relays.length });
    return { errno: E.EHOSTUNREACH };
  }

  /** Sends a relay request and waits for its relay-ok (null: none within `waitMs`). */
  private askRelay(relay: number, req: VnetOf<'relay-req'>, waitMs: number): Promise<VnetOf<'relay-ok'> | null> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.relayWaiters.delete(req.cid);
        resolve(null);
      }, waitMs);
      this.relayWaiters.set(req.cid, (m) => {
        clearTimeout(t);
        this.relayWaiters.delete(req.cid);
        resolve(m);
      });
      this.netw.send(relay, req);
    });
  }

  /** Records a connection whose outcome the far side (or its relay) will tell; bounded by MAX_PENDING_OUTCOMES. */
  private expectOutcome(cid: string, connId: bigint, far: number): void {
    if (!this.outcomes.has(connId) && this.outcomes.size >= MAX_PENDING_OUTCOMES) {
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
   * an answer that cannot come. Returns how many.
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
    const m = typeof far === 'string' ? this.members.byAddr(far) : far;
    if (!self || !m) return;
    const cid = `${self.id}:${connId}`;
    const me = this.members.me();
    const overLan = !!me?.ext && me.ext.ip === m.ext?.ip && m.priv.some((p) => p.ip === real.ip) && me.priv.length > 0;
    if (!punch) {
      this.stat.direct++;
      if (!overLan && this.quiet()) return;
    } else {
      this.stat.punched++;
      this.expectOutcome(cid, connId, m.id);
    }
    let cext: Endpoint | null;
    if (overLan) cext = { ip: me!.priv[0].ip, port: localPort };
    else cext = this.netw.predictOwn(localPort) ?? (punch ? null : { ip: me?.ext?.ip ?? '0.0.0.0', port: 0 });
    const msg: VnetMessage = { k: 'open', cid, vport, cport: localPort, cext, punch: punch || null };
    this.netw.send(m.id, msg);
    this.resendUnanswered(m, msg, connId);
  }

  /** Sends `msg` again every OPEN_RESEND_MS until answered (a direct announcement: once more), at most OPEN_RESENDS times. */
  private resendUnanswered(m: MemberInfo, msg: VnetOf<'open'>, connId: bigint): void {
    let resends = 0;
    const again = () => {
      const o = this.outcomes.get(connId);
      const answered = !msg.punch ? resends >= 1 : !o || o.errno !== null;
      if (answered || resends >= OPEN_RESENDS) return;
      resends++;
      log.debug('sending a connection request again', { to: m.name, cid: msg.cid, resends });
      this.netw.send(m.id, msg);
      setTimeout(again, OPEN_RESEND_MS).unref();
    };
    setTimeout(again, OPEN_RESEND_MS).unref();
  }

  /**
   * CONNECT_RESULT: the outcome, once known or after waitMs (EINPROGRESS: not known). Without a wait the answer
   * is what is known now, given after the messages already read in this turn of the event loop (a refusal
   * arrives REFUSE_NOTICE_MS before the far side completes the handshake), never after a timer's 1 ms clamp.
   */
  result(connId: bigint, waitMs: number): Promise<number> {
    const o = this.outcomes.get(connId);
    if (!o) return Promise.resolve(E.EINPROGRESS);
    if (o.errno !== null) return Promise.resolve(o.errno);
    if (waitMs <= 0) return new Promise((resolve) => setImmediate(() => resolve(o.errno ?? E.EINPROGRESS)));
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(E.EINPROGRESS), waitMs);
      o.waiters.push((e) => {
        clearTimeout(t);
        resolve(e);
      });
    });
  }

  /** A `result` from the far member or the relay. */
  settle(cid: string, errno: number): void {
    const connId = this.byCid.get(cid);
    if (connId === undefined) return;
    this.byCid.delete(cid);
    const o = this.outcomes.get(connId);
    if (!o) return;
    o.errno = errno;
    for (const w of o.waiters.splice(0)) w(errno);
    this.onSettled?.(connId, errno);
  }

  /** A relay's answer to our relay-req. */
  onRelayOk(m: VnetOf<'relay-ok'>): void {
    this.relayWaiters.get(m.cid)?.(m);
  }

  /** Forgets outcomes nobody asked for within VNET_STALE_MS. */
  sweep(): void {
    const old = Date.now() - VNET_STALE_MS;
    for (const [k, v] of this.outcomes) if (v.at < old && v.waiters.length === 0) this.outcomes.delete(k);
  }
}

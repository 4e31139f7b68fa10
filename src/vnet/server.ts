/**
 * The far side of a program's connection, in the member whose program listens: the listening ports the shim
 * reported, the punch back (simultaneous open toward the client's predicted endpoint from the port the client
 * aimed at), the connect out to a relay, and the hand-off of the resulting socket into the program's accept()
 * (handoff.ts); nothing listening: the connection is reset and the client hears ECONNREFUSED.
 */
import fs from 'node:fs';
import os from 'node:os';
import type { MemberInfo } from '../wire/messages';
import { OPEN_HANDLED_TTL_MS, PUNCH_BACK_RETRIES, PUNCH_BACK_RETRY_MS, PUNCH_BACK_TIMEOUT_MS, REFUSE_NOTICE_MS, RELAY_DIAL_TIMEOUT_MS, RESULT_BATCH_MAX, RESULT_BATCH_MS } from '../constants';
import { sleep } from '../util/async';
import { logger } from '../util/log';
import { isMemberEndpoint } from '../traversal/endpoints';
import { Handoffs } from './handoff';
import { relayAsk, type VnetOf } from './messages';
import { Members, SEED, type SocketOps, type VnetNetwork } from './network';

const log = logger('vnet');
const E = os.constants.errno;

export interface AcceptAnswer {
  errno: number;
  vaddr?: string;
  vport?: number;
  /** A descriptor to hand to the program (punched or relayed connection), owned by the caller once returned. */
  fd?: number;
}

export class ConnectServer {
  /** Listening virtual ports and how many sockets listen on each (owned by listen/unlisten). */
  private readonly listens = new Map<number, number>();
  /** Requests handled (punch requests by cid, relay-opens by `relay CID`), with when: each once (firstTime). */
  private readonly handled = new Map<string, number>();
  /** Success `result`s not sent yet, by client member (sendOk: one message per RESULT_BATCH_MS). */
  private readonly oks = new Map<number, string[]>();
  private okTimer: NodeJS.Timeout | null = null;
  readonly handoffs: Handoffs;
  readonly stat = { refused: 0 };
  private readonly members: Members;

  constructor(
    private readonly netw: VnetNetwork,
    private readonly ops: SocketOps,
  ) {
    this.handoffs = new Handoffs(ops);
    this.members = new Members(netw);
  }

  listen(port: number): void {
    this.listens.set(port, (this.listens.get(port) ?? 0) + 1);
  }

  /** The ports programs listen on. */
  listening(): number[] {
    return [...this.listens.keys()];
  }

  unlisten(port: number): void {
    const n = (this.listens.get(port) ?? 0) - 1;
    if (n > 0) this.listens.set(port, n);
    else this.listens.delete(port);
  }

  /** The far side of a punched connection: simultaneous open from port `punch`, then the hand-off. */
  async punchBack(from: number, client: MemberInfo, msg: VnetOf<'open'>): Promise<void> {
    // Each request once: it may come again (see OPEN_RESEND_MS).
    if (!this.firstTime(msg.cid)) return;
    const reply = (errno: number) => (errno === 0 ? this.sendOk(from, msg.cid) : this.netw.send(from, { k: 'result', cid: msg.cid, errno }));
    if (!msg.cext || msg.punch === null) return reply(E.EHOSTUNREACH);
    if (!isMemberEndpoint(client, msg.cext)) {
      log.warn('refused to punch toward an address that is not the member’s', { client: client.name, to: `${msg.cext.ip}:${msg.cext.port}` });
      return reply(E.EHOSTUNREACH);
    }
    log.debug('punching back toward a client', { client: client.name, from: msg.punch, to: `${msg.cext.ip}:${msg.cext.port}`, vport: msg.vport });
    const listening = this.listens.has(msg.vport);
    if (!listening) {
      reply(E.ECONNREFUSED);
      await sleep(REFUSE_NOTICE_MS);
    }
    let fd: number;
    try {
      fd = await this.simultaneousOpen(msg.punch, msg.cext.ip, msg.cext.port);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? '';
      log.info('punching toward a client failed', { client: client.name, port: msg.punch, reason: (e as Error).message });
      return listening ? reply(code === 'ETIMEDOUT' ? E.ETIMEDOUT : E.EHOSTUNREACH) : undefined;
    }
    if (!listening) return this.reset(fd);
    await this.handOver(fd, msg.vport, client, msg.cport, reply);
  }

  /**
   * Connects from local port `port` to `ip:port` (the client connects toward us at once); a reset (the
   * client's SYN had not left yet) is retried PUNCH_BACK_RETRIES times. Returns the connected descriptor.
   */
  private async simultaneousOpen(port: number, ip: string, toPort: number): Promise<number> {
    for (let attempt = 0; ; attempt++) {
      let fd = -1;
      try {
        fd = this.ops.tcpSocket();
        this.ops.bind(fd, '0.0.0.0', port);
        if (!this.ops.connectStart(fd, ip, toPort)) await this.ops.connectWait(fd, PUNCH_BACK_TIMEOUT_MS);
        return fd;
      } catch (e) {
        if (fd >= 0) this.ops.close(fd);
        if ((e as NodeJS.ErrnoException).code === 'ECONNREFUSED' && attempt < PUNCH_BACK_RETRIES) {
          await sleep(PUNCH_BACK_RETRY_MS);
          continue;
        }
        throw e;
      }
    }
  }

  /**
   * The far side of a relayed connection: connect out to the relay, then the hand-off. The client hears the
   * outcome from the relay (which it is linked to already): our connection arriving there means we listen; a
   * refusal travels in relay-cancel. Nothing goes to the client directly, which could need a link of its own.
   */
  async acceptRelayed(relayId: number, msg: VnetOf<'relay-open'>): Promise<void> {
    const client = this.members.byId(msg.from);
    const cancel = (errno: number) => this.netw.send(relayId, { k: 'relay-cancel', cid: msg.cid, errno });
    if (!client) return cancel(E.EHOSTUNREACH);
    if (!this.listens.has(msg.vport)) {
      this.stat.refused++;
      return cancel(E.ECONNREFUSED);
    }
    // The seed, listening on every address, leaves it to us: the address we reach it at. A member relay is met
    // at its own public address, nowhere else (a forged relay-open must not make us connect anywhere).
    // Our own relay (a member that cannot be told apart at our address connects through it, routes.ts): over
    // loopback, which reaches it wherever our public address is (a 1:1 NAT need not hairpin). Only our own
    // broker delivers a message as from us.
    const selfRelay = relayId === this.netw.self()?.id;
    const relayIp = selfRelay ? '127.0.0.1' : msg.relay.ip === '0.0.0.0' && relayId === SEED ? this.netw.seedIp() : msg.relay.ip;
    const relay = relayId === SEED ? null : this.members.byId(relayId);
    const relayOk = relayId === SEED || (!!relay && relay.nat === 'open' && relay.ext?.ip === msg.relay.ip);
    if (!relayOk) {
      log.warn('refused a relayed connection whose relay is not where the member list says', { relay: relayId, at: `${msg.relay.ip}:${msg.relay.port}`, from: msg.from });
      return cancel(E.EHOSTUNREACH);
    }
    if (!this.askedFor(relayId, msg)) {
      log.warn('refused a relayed connection its client did not ask for (no valid seal of the request)', { relay: relayId, from: msg.from, cid: msg.cid });
      return cancel(E.EHOSTUNREACH);
    }
    let fd = -1;
    try {
      if (!relayIp) throw new Error('the seed is not reachable');
      fd = this.ops.tcpSocket();
      if (!this.ops.connectStart(fd, relayIp, msg.relay.port)) await this.ops.connectWait(fd, RELAY_DIAL_TIMEOUT_MS);
      fs.writeSync(fd, msg.token);
    } catch (e) {
      if (fd >= 0) this.ops.close(fd);
      log.info('cannot reach the relay', { relay: `${msg.relay.ip}:${msg.relay.port}`, reason: (e as Error).message });
      return cancel(E.EHOSTUNREACH);
    }
    // The program stopped listening meanwhile: the socket is reset, and the relay resets the client's half.
    await this.handOver(fd, msg.vport, client, msg.cport, (errno) => errno && cancel(errno));
  }

  /**
   * Whether the client named in a relay-open asked for exactly this connection through this relay: its seal of
   * relayAsk(cid, us, vport, cport, relay) opens, the cid is the client's own, and it was not used before (a
   * relay replaying an old request). Without seals (memory tests of other parts) a relay cannot speak for itself.
   */
  private askedFor(relayId: number, msg: VnetOf<'relay-open'>): boolean {
    const self = this.netw.self();
    if (!this.netw.unseal || !self) return msg.from !== relayId;
    if (!msg.ask || !msg.cid.startsWith(`${msg.from}:`)) return false;
    const opened = this.netw.unseal(msg.from, msg.ask);
    const want = relayAsk(msg.cid, self.id, msg.vport, msg.cport, relayId);
    if (!opened || Buffer.compare(Buffer.from(opened), Buffer.from(want)) !== 0) return false;
    return this.firstTime(`relay ${msg.cid}`);
  }

  /**
   * Records a request key in `handled` and says whether it is new. Entries older than OPEN_HANDLED_TTL_MS are
   * dropped oldest first (insertion order), stopping at the first one still kept: O(1) per request, not O(handled).
   */
  private firstTime(key: string): boolean {
    if (this.handled.has(key)) return false;
    const now = Date.now();
    this.handled.set(key, now);
    for (const [k, at] of this.handled) {
      if (now - at <= OPEN_HANDLED_TTL_MS) break;
      this.handled.delete(k);
    }
    return true;
  }

  /** Gives a connected socket to the program listening on `vport`, or resets it when nothing listens there. */
  private async handOver(fd: number, vport: number, client: MemberInfo, cport: number, reply: (errno: number) => void): Promise<boolean> {
    if (this.listens.has(vport)) {
      try {
        await this.handoffs.offer(vport, { fd, vaddr: client.addr, vport: cport });
        // The client's program learns success from its own kernel; the client's agent only stops resending
        // (punchBack's reply batches it, sendOk).
        reply(0);
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

  /**
   * A punched connection was handed over: its success `result` leaves within RESULT_BATCH_MS, with the other
   * successes toward the same member (one message, `more`), or at once when RESULT_BATCH_MAX are waiting.
   */
  private sendOk(to: number, cid: string): void {
    const list = this.oks.get(to);
    if (list) list.push(cid);
    else this.oks.set(to, [cid]);
    if (list && list.length >= RESULT_BATCH_MAX) return this.flushOks();
    this.okTimer ??= setTimeout(() => this.flushOks(), RESULT_BATCH_MS);
  }

  private flushOks(): void {
    if (this.okTimer) clearTimeout(this.okTimer);
    this.okTimer = null;
    for (const [to, cids] of this.oks) {
      const [cid, ...more] = cids;
      this.netw.send(to, more.length ? { k: 'result', cid, errno: 0, more } : { k: 'result', cid, errno: 0 });
    }
    this.oks.clear();
  }

  private reset(fd: number): void {
    this.stat.refused++;
    this.ops.setLinger0(fd);
    this.ops.close(fd);
  }

  close(): void {
    // Shutting down: the clients' programs have their connections; their agents stop resending on their own.
    if (this.okTimer) clearTimeout(this.okTimer);
    this.oks.clear();
    this.handoffs.close();
  }
}

/**
 * Where a punched or hairpin peer link is made: both sides of the `punch` exchange (docs/nat-traversal.md).
 *
 *   requester                              answerer
 *   punch req {sid, ep: predicted}  --->   binds a fresh port, predicts its endpoint
 *                                   <---   punch ack {sid, ep}  (or `fail`), then connects at once
 *   connects from its bound port           (simultaneous open: each SYN opens its own NAT for the other's)
 *
 * A hairpin (both behind one gateway) is not simultaneous: the answerer primes a fresh port, listens on it,
 * and the requester dials its public endpoint. `dial` asks an `open` member's peer to dial it (the answerer
 * dials). Messages travel by `signal` (signal.ts); the stream goes to link-setup.ts.
 */
import type { Duplex } from 'node:stream';
import type { Endpoint, MemberInfo, Message, PathKind } from '../wire/messages';
import { HAIRPIN_PRIME_MS, HAIRPIN_REDIAL_MS, PUNCH_TIMEOUT_MS, SIGNAL_TIMEOUT_MS } from '../constants';
import { withTimeout } from '../util/async';
import type { Logger } from '../util/log';
import type { PeerIo } from './io';
import type { Link } from './links';
import type { SetupSpec } from './link-setup';
import { isMemberEndpoint } from './endpoints';

type PunchMessage = Extract<Message, { t: 'punch' }>;

export interface PunchDeps {
  io: PeerIo;
  selfId(): number;
  member(id: number): MemberInfo | undefined;
  /** Our predicted external endpoint for a local port (null: unpredictable). */
  predict(localPort: number): Endpoint | null;
  /** Delivers a set-up message to a member (signal.ts). */
  signal(to: number, m: Message): Promise<void>;
  setUp(stream: Duplex, spec: SetupSpec): Promise<Link>;
  /** Dials an `open` member's listener (a `dial` request). */
  dialDirect(b: MemberInfo, ep: Endpoint): Promise<Link>;
  /** A public endpoint to send a hairpin's priming SYN to (the seed's discovery port, else our home), or null. */
  primeTarget(): Endpoint | null;
  log: Logger;
}

const epText = (e: Endpoint) => `${e.ip}:${e.port}`;
const newSid = () => (Math.random() * 2 ** 32) >>> 0;

export class Punch {
  /** Requests waiting for the answerer's endpoint, by session id (owned by request/hairpin; settled by onMessage). */
  private readonly acks = new Map<number, { resolve: (ep: Endpoint) => void; reject: (e: Error) => void }>();

  constructor(private readonly d: PunchDeps) {}

  /** Requester of a simultaneous open (`punched`) or a hairpin link with `b`. */
  async request(b: MemberInfo, path: 'punched' | 'hairpin'): Promise<Link> {
    if (path === 'hairpin') return this.hairpin(b);
    const sock = this.d.io.bindFresh();
    try {
      const mine = this.d.predict(sock.port);
      if (!mine) throw new Error('cannot predict our external endpoint');
      const sid = newSid();
      const ack = this.awaitAck(sid);
      try {
        await this.d.signal(b.id, { t: 'punch', sid, phase: 'req', ep: mine, path });
        const theirs = await withTimeout(ack, SIGNAL_TIMEOUT_MS, 'punch answer');
        const stream = await this.d.io.connectBound(sock, theirs, PUNCH_TIMEOUT_MS);
        return await this.d.setUp(stream, { role: this.roleToward(b), expect: b.id, path, endpoint: epText(theirs), home: false });
      } finally {
        this.acks.delete(sid);
      }
    } finally {
      sock.close();
    }
  }

  /** A `punch` message from member `from` (on a link or forwarded). */
  onMessage(from: number, m: PunchMessage): void {
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
        const b = this.d.member(from);
        const ep = m.ep ?? (b?.ext && b.lport ? { ip: b.ext.ip, port: b.lport } : null);
        if (!b || !ep) return;
        if (!isMemberEndpoint(b, ep)) return void this.d.log.warn('refused to dial an address that is not the member’s', { peer: b.name, endpoint: epText(ep) });
        this.d.dialDirect(b, ep).catch((e: Error) => this.d.log.info('could not dial back a member', { peer: b.name, reason: e.message }));
        return;
      }
      case 'req': {
        const b = this.d.member(from);
        if (b && m.path === 'hairpin') return void this.answerHairpin(b, m.sid);
        if (!b || !m.ep) return;
        if (!isMemberEndpoint(b, m.ep)) return void this.d.log.warn('refused to punch toward an address that is not the member’s', { peer: b.name, endpoint: epText(m.ep) });
        void this.answer(b, m.sid, m.ep, m.path);
      }
    }
  }

  /** The lower id initiates the Noise handshake of a simultaneous open (both sides connect). */
  private roleToward(b: MemberInfo): 'init' | 'resp' {
    return this.d.selfId() < b.id ? 'init' : 'resp';
  }

  private awaitAck(sid: number): Promise<Endpoint> {
    return new Promise<Endpoint>((resolve, reject) => this.acks.set(sid, { resolve, reject }));
  }

  private fail(b: MemberInfo, sid: number, path: PathKind): Promise<void> {
    return this.d.signal(b.id, { t: 'punch', sid, phase: 'fail', ep: null, path }).catch(() => {});
  }

  /** Answerer of a simultaneous open. */
  private async answer(b: MemberInfo, sid: number, theirs: Endpoint, path: PathKind): Promise<void> {
    let sock;
    try {
      sock = this.d.io.bindFresh();
    } catch {
      return this.fail(b, sid, path);
    }
    const mine = this.d.predict(sock.port);
    if (!mine) {
      sock.close();
      return this.fail(b, sid, path);
    }
    try {
      await this.d.signal(b.id, { t: 'punch', sid, phase: 'ack', ep: mine, path });
      // Our SYN goes first: the far NAT drops it, but it opens our mapping for theirs (no retransmission).
      const stream = await this.d.io.connectBound(sock, theirs, PUNCH_TIMEOUT_MS);
      await this.d.setUp(stream, { role: this.roleToward(b), expect: b.id, path, endpoint: epText(theirs), home: false });
    } catch (e) {
      this.d.log.info('punch failed', { peer: b.name, path, reason: (e as Error).message });
    } finally {
      sock.close();
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
    const sid = newSid();
    const ack = this.awaitAck(sid);
    try {
      await this.d.signal(b.id, { t: 'punch', sid, phase: 'req', ep: null, path: 'hairpin' });
      const theirs = await withTimeout(ack, SIGNAL_TIMEOUT_MS, 'hairpin answer');
      const stream = await this.dialHairpin(theirs);
      return await this.d.setUp(stream, { role: 'init', expect: b.id, path: 'hairpin', endpoint: epText(theirs), home: false });
    } finally {
      this.acks.delete(sid);
    }
  }

  /**
   * A reset comes from the gateway itself while it has not learnt the neighbour's mapping yet (its priming
   * SYN may leave late on a loaded host): dial again every HAIRPIN_REDIAL_MS until PUNCH_TIMEOUT_MS.
   */
  private async dialHairpin(theirs: Endpoint): Promise<Duplex> {
    const deadline = Date.now() + PUNCH_TIMEOUT_MS;
    for (;;) {
      try {
        return (await this.d.io.dial(theirs, Math.max(1, deadline - Date.now()))).stream;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ECONNREFUSED' || Date.now() + HAIRPIN_REDIAL_MS >= deadline) throw e;
        await new Promise((r) => setTimeout(r, HAIRPIN_REDIAL_MS));
      }
    }
  }

  private async answerHairpin(b: MemberInfo, sid: number): Promise<void> {
    let port: number;
    try {
      const probe = this.d.io.bindFresh();
      port = probe.port;
      probe.close();
    } catch {
      return this.fail(b, sid, 'hairpin');
    }
    const mine = this.d.predict(port);
    if (!mine) return this.fail(b, sid, 'hairpin');
    await this.prime(port);
    const accepted = this.d.io.acceptOnce(port, PUNCH_TIMEOUT_MS + SIGNAL_TIMEOUT_MS);
    accepted.catch(() => {});
    try {
      await this.d.signal(b.id, { t: 'punch', sid, phase: 'ack', ep: mine, path: 'hairpin' });
      const stream = await accepted;
      const r = stream as { remoteAddress?: string; remotePort?: number };
      const from = r.remoteAddress ? `${r.remoteAddress.replace(/^::ffff:/, '')}:${r.remotePort}` : epText(mine);
      await this.d.setUp(stream, { role: 'resp', expect: b.id, path: 'hairpin', endpoint: from, home: false });
    } catch (e) {
      this.d.log.info('hairpin failed', { peer: b.name, reason: (e as Error).message });
    }
  }

  /**
   * Hairpin: a gateway maps a public port back to us only once it has seen traffic from that port leave
   * toward the internet; until then a neighbour's SYN to our public endpoint meets the gateway itself (a
   * reset). So before announcing the port, send one connection from it to a public member and drop it.
   */
  private async prime(port: number): Promise<void> {
    const target = this.d.primeTarget();
    if (!target) return;
    try {
      const { stream } = await this.d.io.dial(target, HAIRPIN_PRIME_MS, port);
      stream.destroy();
    } catch {
      /* the SYN left: that is all the gateway needed */
    }
  }
}

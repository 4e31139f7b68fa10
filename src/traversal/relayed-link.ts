/**
 * Relayed peer links, the path of last resort: the link's bytes travel as `relay` messages through the seed
 * or, while the seed is down, through the far member's home, which carry them one hop (`relayHop`, the one
 * implementation of a relay hop, also the seed's). The two ends run an ordinary Channel over a RelayStream
 * (relay-stream.ts): the relay sees only ciphertext.
 */
import type { Duplex } from 'node:stream';
import type { MemberInfo, Message } from '../wire/messages';
import type { Logger } from '../util/log';
import type { Link, LinkTable } from './links';
import type { SetupSpec } from './link-setup';
import { RelayStream } from './relay-stream';

type RelayMessage = Extract<Message, { t: 'relay' }>;

/**
 * One relay hop: carries `m`, which member `from` sent, to the member it names, marked as from `from`; when
 * that member cannot be reached, ends the stream back toward `from`. `sendTo` returns false when it has no
 * connection to the member. Returns whether `m` was carried.
 */
export function relayHop(m: RelayMessage, from: number, sendTo: (id: number, x: RelayMessage) => boolean): boolean {
  if (m.peer !== from && sendTo(m.peer, { t: 'relay', peer: from, sid: m.sid, data: m.data, end: m.end, hop: false })) return true;
  if (!m.end) sendTo(from, { t: 'relay', peer: m.peer, sid: m.sid, data: new Uint8Array(0), end: true, hop: false });
  return false;
}

export interface RelayedLinkDeps {
  links: LinkTable;
  selfId(): number;
  member(id: number): MemberInfo | undefined;
  seedConnected(): boolean;
  toSeed(m: Message): boolean;
  homeOf(id: number): number | null;
  ensure(id: number): Promise<Link>;
  setUp(stream: Duplex, spec: SetupSpec): Promise<Link>;
  log: Logger;
}

const newSid = () => (Math.random() * 2 ** 32) >>> 0;

export class RelayedLinks {
  /** The relayed streams of this member, by `peer:sid` (owned here: a stream removes itself when destroyed). */
  private readonly streams = new Map<string, RelayStream>();

  constructor(private readonly d: RelayedLinkDeps) {}

  /** Opens a relayed link to `b`: through the seed when it is up, else through `b`'s home. */
  async open(b: MemberInfo): Promise<Link> {
    let send: (m: Message) => boolean;
    let via: string;
    if (this.d.seedConnected()) {
      send = (m) => this.d.toSeed(m);
      via = 'seed';
    } else {
      const h = this.d.homeOf(b.id);
      if (h === null || h === this.d.selfId()) throw new Error('no relay: the seed is down and the member has no home');
      const hl = await this.d.ensure(h);
      send = (m) => hl.ch.sendMessage(m) || !hl.ch.isClosed;
      via = this.d.member(h)?.name ?? String(h);
    }
    const stream = this.stream(b.id, newSid(), send, true);
    return this.d.setUp(stream, { role: 'init', expect: b.id, path: 'relay', endpoint: `via ${via}`, home: false });
  }

  /** A `relay` from the seed (via null) or from a linked member: a hop we carry, bytes of our stream, or a new link. */
  onMessage(m: RelayMessage, via: number | null): void {
    if (via !== null && m.hop) {
      // We are the relay: carry it to the far end, naming the sender.
      relayHop(m, via, (id, x) => {
        const l = this.d.links.get(id);
        if (!l) return false;
        l.lastUsed = Date.now();
        l.ch.sendMessage(x);
        return true;
      });
      return;
    }
    const s = this.streams.get(`${m.peer}:${m.sid}`);
    if (s) return s.deliver(m.data, m.end);
    if (m.end || !this.d.member(m.peer)) return;
    // A new relayed link from m.peer: answer through the same relay.
    const send =
      via === null
        ? (x: Message) => this.d.toSeed(x)
        : (x: Message) => {
            const l = this.d.links.get(via);
            return !!l && (l.ch.sendMessage(x) || !l.ch.isClosed);
          };
    const stream = this.stream(m.peer, m.sid, send, via !== null);
    const name = via === null ? 'seed' : (this.d.member(via)?.name ?? String(via));
    this.d
      .setUp(stream, { role: 'resp', expect: m.peer, path: 'relay', endpoint: `via ${name}`, home: false })
      .catch((e: Error) => this.d.log.debug('relayed link refused', { peer: m.peer, reason: e.message }));
    stream.deliver(m.data, false);
  }

  private stream(peer: number, sid: number, send: (m: Message) => boolean, hop: boolean): RelayStream {
    const key = `${peer}:${sid}`;
    const s = new RelayStream(peer, sid, (data, end) => send({ t: 'relay', peer, sid, data, end, hop }), () => this.streams.delete(key));
    this.streams.set(key, s);
    return s;
  }

  close(): void {
    for (const s of [...this.streams.values()]) s.destroy();
  }
}

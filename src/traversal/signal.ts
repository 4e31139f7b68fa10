/**
 * Signalling between members: set-up messages (`punch`) and vnet payloads that have no link to travel on go
 * through the seed (`fwd`), else through the far member's home (homes.ts), which carries them one hop; and
 * the gossip of a member that left or died while the seed is down (`left` on every link).
 */
import { decodeMessage, encodeMessage, type MemberInfo, type Message } from '../wire/messages';
import type { Logger } from '../util/log';
import type { KeyPair } from '../crypto/keys';
import { openFrom, sealFor } from '../crypto/origin';
import type { Link, LinkTable } from './links';

export interface SignalDeps {
  links: LinkTable;
  /** Our static keys: a `fwd` body is sealed by its origin for its destination (src/crypto/origin.ts). */
  keys: KeyPair;
  member(id: number): MemberInfo | undefined;
  selfId(): number;
  members(): Iterable<MemberInfo>;
  /** Sends to the seed; false when it is not connected. */
  toSeed(m: Message): boolean;
  homeOf(id: number): number | null;
  ensure(id: number): Promise<Link>;
  /** A forwarded `punch` for us. */
  onPunch(from: number, m: Extract<Message, { t: 'punch' }>): void;
  /** A forwarded vnet payload for us. */
  onVnet(from: number, payload: Uint8Array): void;
  log: Logger;
}

export class Signal {
  constructor(private readonly d: SignalDeps) {}

  /** Delivers a set-up or vnet message to `to`: on its link, else through the seed, else through its home. */
  async send(to: number, inner: Message): Promise<void> {
    const l = this.d.links.live(to);
    if (l) {
      l.ch.sendMessage(inner);
      return;
    }
    const self = this.d.selfId();
    const far = this.d.member(to);
    if (!far) throw new Error(`no member ${to}`);
    // Sealed by us for `to`: whoever carries it (the seed, a home) cannot forge or change who it is from.
    const body = sealFor(encodeMessage(inner), far.key, this.d.keys);
    if (this.d.toSeed({ t: 'fwd', to, from: self, body })) return;
    const h = this.d.homeOf(to);
    if (h === null || h === self || h === to) throw new Error(`no way to reach member ${to}: the seed is down and it has no home`);
    const hl = await this.d.ensure(h);
    hl.ch.sendMessage({ t: 'fwd', to, from: self, body });
  }

  /** A `fwd` from the seed (via null) or from a linked member. */
  onFwd(m: Extract<Message, { t: 'fwd' }>, via: number | null): void {
    const self = this.d.selfId();
    if (m.to !== self) {
      // We carry it one hop for a member linked to us; the sender is the authenticated link's member.
      if (via === null) return;
      const l = this.d.links.get(m.to);
      if (l) l.ch.sendMessage({ t: 'fwd', to: m.to, from: via, body: m.body });
      return;
    }
    const from = via === null ? m.from : m.from || via;
    const origin = this.d.member(from);
    const plain = origin ? openFrom(m.body, origin.key, this.d.keys) : null;
    if (!plain) {
      this.d.log.warn('dropping a forwarded message that its named origin did not seal (forged or altered)', { from, via: via ?? 'seed' });
      return;
    }
    let inner: Message;
    try {
      inner = decodeMessage(plain);
    } catch (e) {
      this.d.log.warn('dropping a malformed forwarded message', { from, reason: (e as Error).message });
      return;
    }
    if (inner.t === 'punch') this.d.onPunch(from, inner);
    else if (inner.t === 'vnet') this.d.onVnet(from, inner.payload);
    else this.d.log.debug('ignoring a forwarded message', { from, type: inner.t });
  }

  /** Tells everyone a member is gone: every link, and (when we learnt it first) every public member. */
  async gossipLeft(id: number, reason: 'leave' | 'dead', except: number | null, origin: boolean): Promise<void> {
    const m: Message = { t: 'left', id, reason };
    for (const l of this.d.links.all()) if (l.member !== except && l.member !== id) l.ch.sendMessage(m);
    if (!origin) return;
    for (const x of [...this.d.members()]) {
      if (x.nat !== 'open' || !x.lport || x.id === this.d.selfId() || x.id === id || this.d.links.has(x.id)) continue;
      try {
        (await this.d.ensure(x.id)).ch.sendMessage(m);
      } catch {
        /* it will hear from another */
      }
    }
  }

  /** Leaving while the seed may be down: tell the members we are linked to (our home floods it). */
  announceLeave(): void {
    const self = this.d.selfId();
    for (const l of this.d.links.all()) l.ch.sendMessage({ t: 'left', id: self, reason: 'leave' });
  }
}

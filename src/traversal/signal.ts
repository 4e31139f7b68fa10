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
import { FIRST_LINK_DELAY_MS, LINK_OPEN_TIMEOUT_MS, MAX_FORWARDED_FROM } from '../constants';

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

  /** Members whose vnet messages came through the seed lately, by when: they are opening a link to us (viaSeed). */
  private readonly forwarded = new Map<number, number>();
  /** Links to open soon (firstContact), by member. */
  private readonly linkTimers = new Map<number, NodeJS.Timeout>();
  private closed = false;

  /** Delivers a set-up or vnet message to `to`: on its link, else through the seed, else through its home. */
  async send(to: number, inner: Message): Promise<void> {
    const l = this.d.links.live(to);
    if (l) {
      l.ch.sendMessage(inner);
      return;
    }
    if (this.viaSeed(to, inner)) return;
    const self = this.d.selfId();
    const far = this.d.member(to);
    if (!far) throw new Error(`no member ${to}`);
    const body = sealFor(encodeMessage(inner), far.key, this.d.keys);
    const h = this.d.homeOf(to);
    if (h === null || h === self || h === to) throw new Error(`no way to reach member ${to}: the seed is down and it has no home`);
    const hl = await this.d.ensure(h);
    hl.ch.sendMessage({ t: 'fwd', to, from: self, body });
  }

  /**
   * Sends `inner` to `to` through the seed, sealed by us for `to` (whoever carries it cannot forge or change who
   * it is from). False when the seed is not connected (or `to` is unknown).
   */
  viaSeed(to: number, inner: Message): boolean {
    const far = this.d.member(to);
    if (!far) return false;
    return this.d.toSeed({ t: 'fwd', to, from: this.d.selfId(), body: sealFor(encodeMessage(inner), far.key, this.d.keys) });
  }

  /**
   * A vnet message to a member we have no link to: through the seed at once (false: the seed is not
   * connected), and the link opens FIRST_LINK_DELAY_MS later for the next messages, unless it is opening
   * already or the member is linking to us (its messages came through the seed lately: ours go back the same
   * way, and we open nothing).
   */
  firstContact(id: number, inner: Message, opening: boolean): boolean {
    if (!this.viaSeed(id, inner)) return false;
    const at = this.forwarded.get(id);
    const theirs = at !== undefined && Date.now() - at < LINK_OPEN_TIMEOUT_MS;
    if (theirs || opening || this.linkTimers.has(id)) return true;
    // Later, so that the link's handshakes (X25519 on both agents) do not take the CPU from this connection.
    const t = setTimeout(() => {
      this.linkTimers.delete(id);
      if (this.closed) return;
      this.d.ensure(id).catch((e: Error) => this.d.log.debug('no link yet; vnet messages go through the seed', { to: id, reason: e.message }));
    }, FIRST_LINK_DELAY_MS);
    t.unref();
    this.linkTimers.set(id, t);
    return true;
  }

  close(): void {
    this.closed = true;
    for (const t of this.linkTimers.values()) clearTimeout(t);
    this.linkTimers.clear();
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
    else if (inner.t === 'vnet') {
      if (via === null) {
        // Bounded: one entry a member; the oldest goes first.
        this.forwarded.delete(from);
        if (this.forwarded.size >= MAX_FORWARDED_FROM) this.forwarded.delete(this.forwarded.keys().next().value as number);
        this.forwarded.set(from, Date.now());
      }
      this.d.onVnet(from, inner.payload);
    }
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

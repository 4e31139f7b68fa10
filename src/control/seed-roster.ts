/**
 * The seed's membership table: who is a member, on which control connection, last heard when. It tells every
 * member about every change (broadcast), gives a member whose connection closed RECONNECT_GRACE_MS to come
 * back, and declares dead the members that stop sending heartbeats (DEAD_AFTER_MS).
 *
 * Joins are told in batches (announce, flush): the members hear of the newcomers since the last batch in one
 * message (`joined`, or `joins` for several), encoded once and sealed per member, then each newcomer gets its
 * welcome (after the others know it: a member names a connection from the newcomer only once it knows it),
 * the member list encoded once for all of them. A batch goes at the end of the turn of a join after a quiet
 * spell, else at most every BROADCAST_BATCH_MS (or twice what the last batch took to send, at most
 * BROADCAST_BATCH_MAX_MS). Anything else sent to members first sends the batch, so that
 * the order of events is kept and no newcomer hears anything before its welcome.
 */
import type { Channel } from '../channel/channel';
import { encodeMembers, encodeMessage, encodeWelcome, type Endpoint, type MemberInfo, type Message, type Outcome } from '../wire/messages';
import { BROADCAST_BATCH_MAX_MS, BROADCAST_BATCH_MS, DEAD_AFTER_MS, RECONNECT_GRACE_MS } from '../constants';
import type { Logger } from '../util/log';
import type { NameOwners } from './names';
import type { WatchHub } from './watch';

export interface Entry {
  info: MemberInfo;
  /** The member's control connection (null: the seed's own member, or a member waiting to reconnect). */
  channel: Channel | null;
  lastSeen: number;
  /** The timer that declares it dead unless it reconnects. */
  grace: NodeJS.Timeout | null;
}

type Welcome = Extract<Message, { t: 'welcome' }>;

export class Roster {
  private readonly entries = new Map<number, Entry>();
  /** Newcomers not yet announced nor welcomed, with what their welcome says besides the list. */
  private pending: Array<{ entry: Entry; ch: Channel; welcome: Omit<Welcome, 'members'> }> = [];
  private flushTimer: NodeJS.Timeout | NodeJS.Immediate | null = null;
  private lastFlush = -Infinity;
  /** How long the last batch took to send (ms). */
  private lastFlushCost = 0;

  constructor(
    private readonly watchers: WatchHub,
    private readonly log: Logger,
    private readonly hooks: { changed(): void; dropped(): void; welcome(info: MemberInfo, observed: Endpoint): Omit<Welcome, 'members'> },
  ) {}

  /** A new member (in the table already): the others hear of it, then it is welcomed, with the next batch. */
  announce(entry: Entry, observed: Endpoint): void {
    this.pending.push({ entry, ch: entry.channel!, welcome: this.hooks.welcome(entry.info, observed) });
    if (this.flushTimer) return;
    // At least BROADCAST_BATCH_MS apart, and twice as long as the last batch took to send (one write per
    // member): under a join wave, sending batches takes at most a third of the seed's time.
    const gap = Math.min(BROADCAST_BATCH_MAX_MS, Math.max(BROADCAST_BATCH_MS, 2 * this.lastFlushCost));
    const wait = this.lastFlush + gap - performance.now();
    this.flushTimer = wait <= 0 ? setImmediate(() => this.flush()) : setTimeout(() => this.flush(), wait);
  }

  /** Sends the pending batch: the joins to the members known before it, then the newcomers' welcomes. */
  flush(): void {
    if (this.flushTimer) {
      clearTimeout(this.flushTimer as NodeJS.Timeout);
      clearImmediate(this.flushTimer as NodeJS.Immediate);
      this.flushTimer = null;
    }
    if (!this.pending.length) return;
    this.lastFlush = performance.now();
    const batch = this.pending;
    this.pending = [];
    const fresh = new Set(batch.map((b) => b.entry));
    const infos = batch.filter((b) => this.entries.get(b.entry.info.id) === b.entry).map((b) => b.entry.info);
    if (infos.length) {
      const bytes = encodeMessage(infos.length === 1 ? { t: 'joined', m: infos[0] } : { t: 'joins', members: infos });
      for (const e of this.entries.values()) if (e.channel && !fresh.has(e)) e.channel.sendEncoded(bytes);
    }
    const list = encodeMembers(this.list());
    for (const b of batch) if (b.entry.channel === b.ch) b.ch.sendEncoded(encodeWelcome(b.welcome, list));
    this.lastFlushCost = performance.now() - this.lastFlush;
  }

  has(id: number): boolean {
    return this.entries.has(id);
  }

  get(id: number): Entry | undefined {
    return this.entries.get(id);
  }

  add(entry: Entry): void {
    this.entries.set(entry.info.id, entry);
  }

  ids(): IterableIterator<number> {
    return this.entries.keys();
  }

  get size(): number {
    return this.entries.size;
  }

  /** Members sorted by id. */
  list(): MemberInfo[] {
    return [...this.entries.values()].map((e) => e.info).sort((a, b) => a.id - b.id);
  }

  /** Who holds which name, and how many members provide each service (names.ts decides conflicts from it). */
  owners(): NameOwners {
    const owners: NameOwners = { members: new Map(), services: new Map() };
    for (const e of this.entries.values()) {
      owners.members.set(e.info.name, e.info.id);
      for (const s of e.info.services) owners.services.set(s, (owners.services.get(s) ?? 0) + 1);
    }
    return owners;
  }

  /** Sends `m` to every connected member but `except` (-1: everyone), encoded once; the pending batch first. */
  broadcast(m: Message, except: number): void {
    this.flush();
    const bytes = encodeMessage(m);
    for (const e of this.entries.values()) if (e.info.id !== except && e.channel) e.channel.sendEncoded(bytes);
  }

  /** Sends `m` to member `id` on its control connection (the pending batch first); false when it has none. */
  sendTo(id: number, m: Message): boolean {
    this.flush();
    const ch = this.entries.get(id)?.channel;
    if (!ch) return false;
    ch.sendMessage(m);
    return true;
  }

  /** A member left or died: everyone (observers included) hears it. */
  remove(id: number, reason: 'leave' | 'dead', outcome?: Outcome): void {
    const e = this.entries.get(id);
    if (!e) return;
    if (e.grace) clearTimeout(e.grace);
    this.entries.delete(id);
    this.log.info(reason === 'leave' ? 'member left' : 'member died', { id, name: e.info.name });
    this.broadcast({ t: 'left', id, reason }, id);
    this.watchers.left(id, reason, outcome);
    this.hooks.changed();
  }

  /** A member's control connection closed: it has RECONNECT_GRACE_MS to come back before it is dead. */
  disconnected(entry: Entry): void {
    entry.channel = null;
    if (!this.entries.has(entry.info.id)) return;
    this.hooks.dropped();
    this.log.info('member connection lost; waiting for it to reconnect', { id: entry.info.id, graceMs: RECONNECT_GRACE_MS });
    entry.grace = setTimeout(() => {
      if (!entry.channel) this.remove(entry.info.id, 'dead');
    }, RECONNECT_GRACE_MS);
    entry.grace.unref();
  }

  /** Declares dead the connected members silent for DEAD_AFTER_MS (run every heartbeat interval). */
  sweep(): void {
    const now = Date.now();
    for (const e of this.entries.values()) {
      if (e.channel && now - e.lastSeen > DEAD_AFTER_MS) {
        this.log.info('member stopped sending heartbeats: declaring it dead', { id: e.info.id, silentMs: now - e.lastSeen });
        const ch = e.channel;
        e.channel = null;
        ch.close();
        this.remove(e.info.id, 'dead');
      }
    }
  }

  /** Stops the grace timers (the seed closes). */
  close(): void {
    this.flush();
    for (const e of this.entries.values()) if (e.grace) clearTimeout(e.grace);
  }
}

/**
 * The seed's membership table: who is a member, on which control connection, last heard when. It tells every
 * member about every change (broadcast), gives a member whose connection closed RECONNECT_GRACE_MS to come
 * back, and declares dead the members that stop sending heartbeats (DEAD_AFTER_MS).
 */
import type { Channel } from '../channel/channel';
import type { MemberInfo, Message, Outcome } from '../wire/messages';
import { DEAD_AFTER_MS, RECONNECT_GRACE_MS } from '../constants';
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

export class Roster {
  private readonly entries = new Map<number, Entry>();

  constructor(
    private readonly watchers: WatchHub,
    private readonly log: Logger,
    private readonly hooks: { changed(): void; dropped(): void },
  ) {}

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

  /** Sends `m` to every connected member but `except` (-1: everyone). */
  broadcast(m: Message, except: number): void {
    for (const e of this.entries.values()) if (e.info.id !== except && e.channel) e.channel.sendMessage(m);
  }

  /** Sends `m` to member `id` on its control connection; false when it has none. */
  sendTo(id: number, m: Message): boolean {
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
    for (const e of this.entries.values()) if (e.grace) clearTimeout(e.grace);
  }
}

/**
 * Homes: every member keeps one link to an `open` member, its home, chosen by rendezvous hashing over the
 * open members, so that set-up messages reach it while the seed is down (signal.ts) and so that its death is
 * noticed then: a home whose member's link is gone for HOME_DEATH_GRACE_MS, with the seed down, declares it
 * dead and tells everyone. An open member is the home of at most MAX_HOMES_SERVED members (assignHomes), so
 * that its links stay within MAX_LINKS however many members the network has.
 */
import type { MemberInfo } from '../wire/messages';
import { HOME_DEATH_GRACE_MS, HOME_RETRY_MS, MAX_HOMES_SERVED } from '../constants';
import type { Logger } from '../util/log';
import type { Link, LinkTable } from './links';

/** Deterministic hash of a pair of ids (rendezvous hashing for homes). */
function score(a: number, b: number): number {
  let h = (Math.imul(a, 0x9e3779b1) ^ Math.imul(b + 0x632be5ab, 0x85ebca6b)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d) >>> 0;
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** Whether a member can be a home: `open`, with a peer-link listener. */
const canHost = (m: MemberInfo) => m.nat === 'open' && !!m.lport;

/**
 * Every member's home, the same from every member that has the same list: members in id order each take the
 * open member (with a listener, not themselves) of the highest score for the pair that serves fewer than
 * `cap` members yet. An open member thus holds at most `cap` home links of others (MAX_HOMES_SERVED, within
 * the link bound MAX_LINKS); members beyond `cap` x the open members have no home (null): their death while
 * the seed is down is noticed when the seed comes back. O(members x open members).
 */
export function assignHomes(members: Iterable<MemberInfo>, cap = MAX_HOMES_SERVED): Map<number, number | null> {
  const all = [...members].sort((a, b) => a.id - b.id);
  const hosts = all.filter(canHost).map((m) => m.id);
  const load = new Map<number, number>();
  const out = new Map<number, number | null>();
  for (const m of all) {
    let best: number | null = null;
    let bestScore = -1;
    for (const h of hosts) {
      if (h === m.id || (load.get(h) ?? 0) >= cap) continue;
      const s = score(m.id, h);
      if (s > bestScore) {
        best = h;
        bestScore = s;
      }
    }
    if (best !== null) load.set(best, (load.get(best) ?? 0) + 1);
    out.set(m.id, best);
  }
  return out;
}

/** `id`'s home (assignHomes), or null. */
export function homeOf(members: Iterable<MemberInfo>, id: number, cap = MAX_HOMES_SERVED): number | null {
  return assignHomes(members, cap).get(id) ?? null;
}

/** A number that changes when the ids or the home-capable members change (the cache key of the assignment). */
function signature(members: Iterable<MemberInfo>): string {
  let h = 0;
  let n = 0;
  for (const m of members) {
    n++;
    h = (h + score(m.id, canHost(m) ? 1 : 2)) >>> 0;
  }
  return `${n}/${h}`;
}

export interface HomesDeps {
  links: LinkTable;
  selfId(): number;
  members(): Iterable<MemberInfo>;
  member(id: number): MemberInfo | undefined;
  seedConnected(): boolean;
  /** Opens the link to `id` (as a home link when `home`). */
  ensure(id: number, home: boolean): Promise<Link>;
  /** A link to `id` is being opened. */
  opening(id: number): boolean;
  /** The member is gone: forget it (false: it was not known) and tell everyone. */
  forget(id: number, reason: 'dead'): boolean;
  gossipDeath(id: number): void;
  log: Logger;
}

export class Homes {
  /** Our current home (owned by maintain). */
  private homeId: number | null = null;
  private nextTry = 0;
  /** Members homed on us whose link is gone while the seed is down, by member (owned by lost/linked/close). */
  private readonly deathTimers = new Map<number, NodeJS.Timeout>();

  constructor(private readonly d: HomesDeps) {}

  /** The assignment and the member list it was made from (recomputed when the ids or open members change). */
  private cache: { sig: string; homes: Map<number, number | null> } | null = null;

  of(id: number): number | null {
    const sig = signature(this.d.members());
    if (this.cache?.sig !== sig) this.cache = { sig, homes: assignHomes(this.d.members()) };
    return this.cache.homes.get(id) ?? null;
  }

  /** Whether we are member `id`'s home (a link it opens as its home is kept as one only then). */
  serves(id: number): boolean {
    return this.of(id) === this.d.selfId();
  }

  /** Keeps our home link open (called every keepalive tick). */
  maintain(): void {
    const self = this.d.selfId();
    if (!self) return;
    const h = this.of(self);
    if (h !== this.homeId) {
      const old = this.homeId !== null ? this.d.links.get(this.homeId) : undefined;
      if (old && old.initiatorId === self) old.home = false;
      this.homeId = h;
    }
    if (h === null) return;
    const l = this.d.links.get(h);
    if (l) {
      l.home = true;
      return;
    }
    if (this.d.opening(h) || Date.now() < this.nextTry) return;
    this.nextTry = Date.now() + HOME_RETRY_MS;
    this.d.ensure(h, true).then(
      (x) => (x.home = true),
      (e: Error) => this.d.log.debug('cannot reach our home', { home: h, reason: e.message }),
    );
  }

  /** A member linked (again): it is not dying. */
  linked(member: number): void {
    const timer = this.deathTimers.get(member);
    if (timer) {
      clearTimeout(timer);
      this.deathTimers.delete(member);
    }
  }

  /** A link closed: if it was a member homed on us and the seed is down, we are the one to declare it dead. */
  lost(l: Link): void {
    if (!(l.home && l.initiatorId === l.member && !this.d.seedConnected() && this.d.member(l.member))) return;
    this.deathTimers.set(
      l.member,
      setTimeout(() => {
        this.deathTimers.delete(l.member);
        if (this.d.links.has(l.member) || this.d.seedConnected()) return;
        if (this.d.forget(l.member, 'dead')) {
          this.d.log.info('member died (its home link is gone and the seed is down)', { id: l.member });
          this.d.gossipDeath(l.member);
        }
      }, HOME_DEATH_GRACE_MS),
    );
  }

  close(): void {
    for (const t of this.deathTimers.values()) clearTimeout(t);
  }
}

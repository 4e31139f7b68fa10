/**
 * The link table: at most one live peer link per member, the rule that picks one when both ends opened a
 * link at once, the bound on open links (MAX_LINKS, least recently used first), and the waits for a link that
 * the far side is opening toward us. It knows nothing of how a link was made (paths.ts, punch.ts,
 * relayed-link.ts) or what travels on it (peers.ts).
 */
import type { Channel } from '../channel/channel';
import type { PathKind } from '../wire/messages';
import { LINK_MIN_AGE_MS } from '../constants';
import type { Logger } from '../util/log';

/** One encrypted agent-to-agent link. */
export class Link {
  lastHeard = Date.now();
  lastUsed = Date.now();
  readonly since = Date.now();
  rttMs: number | null = null;
  /** Last ping number sent (keepalive.ts). */
  n = 0;
  /** Pings in flight by number (keepalive.ts and Peers.ping); `done(-1)`: the link closed. */
  readonly pings = new Map<number, { t0: number; done?: (rtt: number) => void }>();
  constructor(
    readonly member: number,
    readonly ch: Channel,
    readonly path: PathKind,
    readonly endpoint: string,
    /** The member that opened the link (decides between two links opened at once). */
    readonly initiatorId: number,
    /** A home link (homes.ts): kept open, never closed for the bound or for idleness. */
    public home: boolean,
  ) {}
}

export interface LinkStatus {
  id: number;
  path: PathKind;
  endpoint: string;
  rttMs: number | null;
  home: boolean;
  idleMs: number;
}

/** What the table tells its owner. */
export interface LinkTableHooks {
  /** The set of links changed (one opened, replaced or closed). */
  change(): void;
  /** A link was registered for `member` (a home's death timer for it stops). */
  linked(member: number): void;
  /** The registered link `l` closed (while the owner runs). */
  lost(l: Link): void;
}

/** Is link `a` preferred to link `b` (to the same member)? Both ends decide alike: direct over relayed, then the lower initiator. */
export function better(a: Link, b: Link): boolean {
  if ((a.path === 'relay') !== (b.path === 'relay')) return b.path === 'relay';
  if (a.initiatorId !== b.initiatorId) return a.initiatorId < b.initiatorId;
  return true;
}

export class LinkTable {
  /** The registered link of each member (owned here: set by register, deleted when that link closes). */
  private readonly links = new Map<number, Link>();
  /** Callers waiting for a link the far member opens toward us, by member (owned by waitInbound/wake). */
  private readonly waiters = new Map<number, Set<(l: Link) => void>>();
  readonly stats = { opened: 0, closed: 0, maxOpen: 0 };

  constructor(
    private readonly maxLinks: number,
    private readonly hooks: LinkTableHooks,
    private readonly log: Logger,
  ) {}

  get size(): number {
    return this.links.size;
  }

  /** The registered link of `id`, open or closing. */
  get(id: number): Link | undefined {
    return this.links.get(id);
  }

  /** The registered link of `id` if it is still open. */
  live(id: number): Link | undefined {
    const l = this.links.get(id);
    return l && !l.ch.isClosed ? l : undefined;
  }

  has(id: number): boolean {
    return this.links.has(id);
  }

  all(): Link[] {
    return [...this.links.values()];
  }

  status(): LinkStatus[] {
    const now = Date.now();
    return this.all().map((l) => ({ id: l.member, path: l.path, endpoint: l.endpoint, rttMs: l.rttMs, home: l.home, idleMs: now - l.lastUsed }));
  }

  /** Keeps the better of `l` and the member's current link (the other is closed); returns the one kept. */
  register(l: Link): Link {
    const old = this.links.get(l.member);
    if (old && !old.ch.isClosed) {
      if (!better(l, old)) {
        l.ch.close();
        old.home ||= l.home;
        this.wake(old);
        return old;
      }
      l.home ||= old.home;
    }
    this.links.set(l.member, l);
    this.stats.opened++;
    this.hooks.linked(l.member);
    l.ch.on('close', () => this.closed(l));
    if (old && !old.ch.isClosed) old.ch.close();
    this.enforceBound(l);
    this.stats.maxOpen = Math.max(this.stats.maxOpen, this.links.size);
    this.wake(l);
    this.hooks.change();
    return l;
  }

  /** Resolves with the next link registered for `id` (opened by either side) within `ms`. */
  waitInbound(id: number, ms: number): Promise<Link> {
    return new Promise((resolve, reject) => {
      let set = this.waiters.get(id);
      if (!set) this.waiters.set(id, (set = new Set()));
      const fn = (l: Link) => {
        clearTimeout(t);
        resolve(l);
      };
      const t = setTimeout(() => {
        set!.delete(fn);
        reject(new Error(`member ${id} did not connect within ${ms} ms`));
      }, ms);
      set.add(fn);
    });
  }

  private wake(l: Link): void {
    const set = this.waiters.get(l.member);
    if (!set) return;
    this.waiters.delete(l.member);
    for (const fn of set) fn(l);
  }

  private closed(l: Link): void {
    for (const p of l.pings.values()) p.done?.(-1);
    if (this.links.get(l.member) !== l) return;
    this.links.delete(l.member);
    this.stats.closed++;
    this.hooks.change();
    this.hooks.lost(l);
  }

  /** Closes least recently used links (not `keep`, not home links, not younger than LINK_MIN_AGE_MS) down to the bound. */
  enforceBound(keep: Link | null): void {
    let guard = this.links.size;
    const now = Date.now();
    while (this.links.size > this.maxLinks && guard-- > 0) {
      let victim: Link | null = null;
      for (const l of this.links.values()) {
        if (l === keep || l.home || now - l.since < LINK_MIN_AGE_MS) continue;
        if (!victim || l.lastUsed < victim.lastUsed) victim = l;
      }
      if (!victim) return;
      this.log.debug('closing the least recently used link', { peer: victim.member });
      victim.ch.close();
    }
  }

  /** Closes every link; returns how many there were. */
  closeAll(): number {
    const n = this.links.size;
    for (const l of this.all()) l.ch.close();
    return n;
  }
}

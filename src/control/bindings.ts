/**
 * The seed's identity bindings: which static key (the one the Noise handshake authenticated) holds which member
 * id, virtual address and name. The seed alone assigns ids; an id's address is `addressOf(id)`, so a claimed
 * address is checked by recomputing it. A key that comes back (a rejoin after a lost connection or a seed
 * restart, or the same member restarted with its kept key) gets its binding back and nothing else; the
 * bindings are recorded in the seed's state file, so that after a restart a member proves its binding with its
 * key.
 *
 * Nothing a member sends moves the id counter out of range: a claim is only taken for an id in
 * [1, capacity] that no key holds, and when the counter reaches the top of the network the next id is the
 * lowest one no binding holds (then the least recently seen binding of a member that is gone gives its id up),
 * so admission never stops for good. The table is bounded (SEED_MAX_BINDINGS): bindings of members long gone
 * are dropped first.
 */
import fs from 'node:fs';
import { addressOf, capacity, type Cidr } from './addresses';
import { defaultName, nameConflict, nameProblem, type NameOwners } from './names';
import type { Rejoin } from '../wire/messages';
import { NAME_RE, SEED_MAX_BINDINGS } from '../constants';
import { writeFileAtomic } from '../util/paths';
import { logger } from '../util/log';

const log = logger('seed');

export interface Binding {
  id: number;
  addr: string;
  name: string;
  /** The static public key, hex. */
  key: string;
  /** When the member was last connected (ms since the epoch): the oldest of the gone goes first. */
  seen: number;
}

/** The seed's state file: the network it is for, the id counter, the bindings. */
export interface SeedState {
  network: string;
  maxId: number;
  bindings: Array<Omit<Binding, 'seen'> & { seen?: number }>;
}

/** The seed's decision on a join: the id and name it gets, or a refusal (a wire error code and why). */
export type Decision =
  | { id: number; name: string; bound: boolean }
  | { refuse: 'bad-request' | 'name-taken' | 'network-full'; message: string };

export interface DecisionContext {
  /** Whether member `id` is present. */
  live(id: number): boolean;
  /** The key of present member `id`. */
  keyOf(id: number): Uint8Array | undefined;
  /** The names and services of the present members. */
  owners: NameOwners;
  /** Whether rejoins of unknown keys may claim ids (a seed without recorded bindings, just started). */
  claimsOpen: boolean;
}

export class Bindings {
  readonly capacity: number;
  private readonly byKey = new Map<string, Binding>();
  private readonly byId = new Map<number, Binding>();
  /** Highest id handed out or learnt (never above capacity). */
  maxId = 0;

  constructor(
    readonly cidr: Cidr,
    private readonly max = SEED_MAX_BINDINGS,
  ) {
    this.capacity = capacity(cidr);
  }

  get size(): number {
    return this.byKey.size;
  }

  ofKey(key: string): Binding | undefined {
    return this.byKey.get(key);
  }

  ofId(id: number): Binding | undefined {
    return this.byId.get(id);
  }

  /**
   * Why member `id` at `addr` cannot be taken by an unknown key claiming it (a rejoin to a seed that lost its
   * state), or null when it can.
   */
  claimProblem(id: number, addr: string): string | null {
    const expect = addressOf(this.cidr, id);
    if (!expect) return `member id ${id} is outside this network (${this.cidr.text} holds ids 1-${this.capacity})`;
    if (expect !== addr) return `member id ${id} has the address ${expect}, not ${addr}`;
    if (this.byId.has(id)) return `member id ${id} belongs to another node`;
    return null;
  }

  /**
   * Decides a join from `key` (hex): the key's binding when it has one (the same member on a new connection,
   * or restarted with its kept key), else a rejoin's claim where the context allows claims, else a new id.
   * Refuses invalid names, claims that differ from the key's binding or conflict with another key's, and names a
   * present member with another key holds. Binds nothing (the caller binds once it admits).
   */
  decide(key: string, m: { name?: string; services: string[]; rejoin?: Rejoin }, ctx: DecisionContext): Decision {
    const asked = m.rejoin?.name ?? m.name;
    for (const [what, n] of [['name', asked], ...m.services.map((x) => ['service name', x])] as Array<[string, string | undefined]>) {
      const why = n === undefined ? null : nameProblem(n);
      if (why) return { refuse: 'bad-request', message: `the ${what} ${JSON.stringify(n)} ${why}` };
    }
    const bound = this.byKey.get(key);
    let id: number;
    let name: string;
    if (bound) {
      if (m.rejoin && (m.rejoin.id !== bound.id || m.rejoin.addr !== bound.addr)) {
        return { refuse: 'bad-request', message: `this node's key holds member ${bound.id} (${bound.addr}) here, not ${m.rejoin.id} (${m.rejoin.addr})` };
      }
      if (asked !== undefined && asked !== bound.name) {
        return { refuse: 'bad-request', message: `this node's key is bound to the name ${bound.name}; another name needs another key` };
      }
      id = bound.id;
      name = bound.name;
    } else if (m.rejoin) {
      const r = m.rejoin;
      if (!ctx.claimsOpen) return { refuse: 'bad-request', message: `member ${r.id} (${r.name}) is not bound to this node's key at this seed; join anew` };
      const why = this.claimProblem(r.id, r.addr);
      if (why) return { refuse: 'bad-request', message: why };
      id = r.id;
      name = r.name;
    } else {
      const next = this.nextId(ctx.live);
      if (next === null) return { refuse: 'network-full', message: `the virtual network ${this.cidr.text} has no free address left; start the seed with a larger --network` };
      id = next;
      name = m.name ?? defaultName(id);
    }
    const liveKey = ctx.keyOf(id);
    if (liveKey && Buffer.from(liveKey).toString('hex') !== key) return { refuse: 'bad-request', message: `member id ${id} belongs to another node` };
    const why = nameConflict(ctx.owners, id, name, m.services);
    if (why) return { refuse: 'name-taken', message: `${why}; choose another with --name` };
    return { id, name, bound: !!bound };
  }

  /**
   * A new id (not yet bound): the next above the counter, or, once the counter is at the top of the network,
   * the lowest id no binding holds, or the id of the least recently seen binding that `live` says is gone.
   * Null when every address is held by a live member.
   */
  nextId(live: (id: number) => boolean): number | null {
    if (this.maxId < this.capacity) return this.maxId + 1;
    for (let id = 1; id <= this.capacity; id++) if (!this.byId.has(id)) return id; // at most size+1 steps
    let oldest: Binding | null = null;
    for (const b of this.byKey.values()) if (!live(b.id) && (!oldest || b.seen < oldest.seen)) oldest = b;
    return oldest ? oldest.id : null; // bind() drops the old binding of that id
  }

  /** Binds key to id (and its address) and name; returns the binding. `live` protects members from eviction. */
  bind(key: string, id: number, name: string, live: (id: number) => boolean): Binding {
    const addr = addressOf(this.cidr, id);
    if (!addr) throw new Error(`id ${id} outside the network`);
    const old = this.byKey.get(key);
    if (old) this.drop(old);
    const held = this.byId.get(id);
    if (held) this.drop(held);
    const b: Binding = { id, addr, name, key, seen: Date.now() };
    this.byKey.set(key, b);
    this.byId.set(id, b);
    this.maxId = Math.max(this.maxId, id);
    this.evict(live);
    return b;
  }

  private drop(b: Binding): void {
    this.byKey.delete(b.key);
    if (this.byId.get(b.id) === b) this.byId.delete(b.id);
  }

  /** Keeps the table within its bound: the least recently seen bindings of gone members go first. */
  private evict(live: (id: number) => boolean): void {
    if (this.byKey.size <= this.max) return;
    const gone = [...this.byKey.values()].filter((b) => !live(b.id)).sort((a, b) => a.seen - b.seen);
    for (const b of gone) {
      if (this.byKey.size <= this.max) break;
      this.drop(b);
    }
  }

  /**
   * Loads the seed's state file: 'none' (no file, unreadable, another network), 'legacy' (a counter without
   * bindings, from an older seed) or 'bindings'. Entries that are malformed or do not fit the network are skipped.
   */
  load(file: string | null): 'none' | 'legacy' | 'bindings' {
    if (!file || !fs.existsSync(file)) return 'none';
    let s: Partial<SeedState>;
    try {
      s = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<SeedState>;
    } catch {
      log.warn('ignoring an unreadable seed state file', { file });
      return 'none';
    }
    if (!s || s.network !== this.cidr.text || !Number.isInteger(s.maxId)) return 'none';
    this.maxId = Math.min(Math.max(0, s.maxId!), this.capacity);
    if (!Array.isArray(s.bindings)) return 'legacy';
    for (const b of s.bindings) {
      if (!b || typeof b.key !== 'string' || !/^[0-9a-f]{64}$/.test(b.key) || typeof b.name !== 'string' || !NAME_RE.test(b.name)) continue;
      if (addressOf(this.cidr, b.id) !== b.addr || this.byId.has(b.id) || this.byKey.has(b.key)) continue;
      const binding: Binding = { id: b.id, addr: b.addr, name: b.name, key: b.key, seen: typeof b.seen === 'number' ? b.seen : 0 };
      this.byKey.set(b.key, binding);
      this.byId.set(b.id, binding);
      this.maxId = Math.max(this.maxId, b.id);
    }
    return 'bindings';
  }

  /** Writes the state file (mode 0600, atomically); the members in `live` are marked seen now. */
  save(file: string | null, live: Iterable<number>): void {
    if (!file) return;
    const now = Date.now();
    for (const id of live) {
      const b = this.byId.get(id);
      if (b) b.seen = now;
    }
    const s: SeedState = { network: this.cidr.text, maxId: this.maxId, bindings: [...this.byKey.values()].map((b) => ({ ...b })) };
    try {
      writeFileAtomic(file, JSON.stringify(s), 0o600);
    } catch (e) {
      log.warn('cannot record the seed state', { file, reason: (e as Error).message });
    }
  }
}

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
import { addressOf, capacity, type Cidr } from './addresses';
import { SEED_MAX_BINDINGS } from '../constants';
import { NAME_RE } from '../constants';

export interface Binding {
  id: number;
  addr: string;
  name: string;
  /** The static public key, hex. */
  key: string;
  /** When the member was last connected (ms since the epoch): the oldest of the gone goes first. */
  seen: number;
}

/** What the state file keeps of the bindings. */
export interface BindingsState {
  maxId: number;
  bindings: Array<Omit<Binding, 'seen'> & { seen?: number }>;
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
   * A new id (not yet bound): the next above the counter, or, once the counter is at the top of the network,
   * the lowest id no binding holds, or the id of the least recently seen binding that `live` says is gone.
   * Null when every address is held by a live member.
   */
  nextId(live: (id: number) => boolean): number | null {
    if (this.maxId < this.capacity) return this.maxId + 1;
    for (let id = 1; id <= this.capacity; id++) if (!this.byId.has(id)) return id; // at most size+1 steps
    let oldest: Binding | null = null;
    for (const b of this.byKey.values()) if (!live(b.id) && (!oldest || b.seen < oldest.seen)) oldest = b;
    if (!oldest) return null;
    this.drop(oldest);
    return oldest.id;
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

  touch(b: Binding): void {
    b.seen = Date.now();
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

  toState(): BindingsState {
    return { maxId: this.maxId, bindings: [...this.byKey.values()].map((b) => ({ ...b })) };
  }

  /** Loads a state file's bindings, skipping entries that are malformed or do not fit this network. */
  load(s: Partial<BindingsState>): void {
    if (Number.isInteger(s.maxId)) this.maxId = Math.min(Math.max(0, s.maxId!), this.capacity);
    for (const b of Array.isArray(s.bindings) ? s.bindings : []) {
      if (!b || typeof b.key !== 'string' || !/^[0-9a-f]{64}$/.test(b.key) || typeof b.name !== 'string' || !NAME_RE.test(b.name)) continue;
      if (addressOf(this.cidr, b.id) !== b.addr || this.byId.has(b.id) || this.byKey.has(b.key)) continue;
      const binding: Binding = { id: b.id, addr: b.addr, name: b.name, key: b.key, seen: typeof b.seen === 'number' ? b.seen : 0 };
      this.byKey.set(b.key, binding);
      this.byId.set(b.id, binding);
      this.maxId = Math.max(this.maxId, b.id);
    }
  }
}

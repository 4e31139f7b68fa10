/**
 * The seed's front door against floods: a token bucket per source address for handshakes (a source that
 * exceeds it is closed before any cryptography runs), and refusals logged as one summary line per period
 * instead of one line per attempt (24,430 refused attempts once made 21k warnings). The first refusal of each
 * kind is logged at once, so that a member with a wrong secret is told in the seed's log without delay.
 * Sources share an address behind a NAT (hundreds of functions behind one gateway), so the bucket is generous:
 * it stops a flood, not a fleet joining at once.
 */
import {
  HANDSHAKE_BURST,
  HANDSHAKE_RATE_PER_S,
  MAX_GATE_SOURCES,
  REFUSAL_SUMMARY_MS,
} from '../constants';
import type { Logger } from '../util/log';

export type Refusal = 'rate-limited' | 'wrong-secret' | 'version' | 'malformed' | 'timeout' | 'other';

interface Bucket {
  tokens: number;
  at: number;
}

export class HandshakeGate {
  private readonly buckets = new Map<string, Bucket>();
  private readonly counts = new Map<Refusal, number>();
  private readonly sources = new Set<string>();
  private readonly told = new Set<Refusal>();
  private readonly timer: NodeJS.Timeout;
  /** Totals since start (for stats and tests). */
  readonly total = { admitted: 0, refused: 0, summaries: 0 };

  constructor(
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.timer = setInterval(() => this.flush(), REFUSAL_SUMMARY_MS);
    this.timer.unref();
  }

  /** Whether a new handshake from `ip` may start now (takes a token). */
  admit(ip: string): boolean {
    const t = this.now();
    let b = this.buckets.get(ip);
    if (!b) {
      if (this.buckets.size >= MAX_GATE_SOURCES) this.evict(t);
      b = { tokens: HANDSHAKE_BURST, at: t };
    } else this.buckets.delete(ip); // re-inserted below: the map's order is least recently seen first
    b.tokens = Math.min(HANDSHAKE_BURST, b.tokens + ((t - b.at) / 1000) * HANDSHAKE_RATE_PER_S);
    b.at = t;
    this.buckets.set(ip, b);
    if (b.tokens < 1) {
      this.refused('rate-limited', ip);
      return false;
    }
    b.tokens -= 1;
    this.total.admitted++;
    return true;
  }

  /** Records a refused handshake; the first of each kind is logged at once with `detail`, the rest summarised. */
  refused(kind: Refusal, ip: string, detail?: Record<string, unknown>): void {
    this.total.refused++;
    this.counts.set(kind, (this.counts.get(kind) ?? 0) + 1);
    if (this.sources.size < 1000) this.sources.add(ip);
    if (!this.told.has(kind)) {
      this.told.add(kind);
      this.log.warn(FIRST[kind], { peer: ip, ...detail, note: `further refusals are summarised every ${REFUSAL_SUMMARY_MS / 1000} s` });
    }
  }

  /** Logs the refusals of the period in one line (nothing when there were none). */
  flush(): void {
    if (this.counts.size === 0) return;
    const byKind = Object.fromEntries(this.counts);
    const n = [...this.counts.values()].reduce((a, b) => a + b, 0);
    this.log.warn(`refused ${n} handshakes in the last ${REFUSAL_SUMMARY_MS / 1000} s`, { ...byKind, sources: this.sources.size, example: this.sources.values().next().value });
    this.total.summaries++;
    this.counts.clear();
    this.sources.clear();
  }

  close(): void {
    clearInterval(this.timer);
    this.flush();
  }

  /** Forgets the buckets that are full again (idle sources), else the least recently seen. */
  private evict(t: number): void {
    for (const [ip, b] of this.buckets) {
      if (b.tokens + ((t - b.at) / 1000) * HANDSHAKE_RATE_PER_S >= HANDSHAKE_BURST) this.buckets.delete(ip);
      if (this.buckets.size < MAX_GATE_SOURCES * 0.9) return;
    }
    while (this.buckets.size >= MAX_GATE_SOURCES) this.buckets.delete(this.buckets.keys().next().value as string);
  }
}

const FIRST: Record<Refusal, string> = {
  'rate-limited': 'closing handshakes from a source that opens too many (rate limit)',
  'wrong-secret': 'refused a node that does not know the network secret: check that it was given the same --secret-file / BOXER_SECRET',
  version: 'refused a node that speaks another protocol version: run the same Boxer version everywhere',
  malformed: 'refused a connection that is not a Boxer handshake',
  timeout: 'a handshake did not complete in time',
  other: 'handshake failed',
};

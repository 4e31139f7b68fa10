/**
 * Handing a connection that the agent made (punched, or relayed) to the program that listens for it.
 *
 * The agent connects to the program's listening port over loopback, which makes the program's accept()
 * return; the shim, inside accept() and before the program sees the descriptor, asks the agent (ACCEPTED)
 * and receives the real socket, which it puts in place of the loopback one (docs/shim-protocol.md). Here:
 * the loopback "wake" connection and the real socket waiting to be claimed, keyed by the wake's local port.
 */
import net from 'node:net';

/** A hand-off not claimed by an accept() within this long is dropped (the program is not accepting). */
export const HANDOFF_TTL_MS = 30_000;
/** How long ACCEPTED waits for a wake connection's bookkeeping, which may trail the kernel's accept. */
export const HANDOFF_CLAIM_WAIT_MS = 1_000;

export interface Handed {
  fd: number;
  vaddr: string;
  vport: number;
}

export class Handoffs {
  private readonly waiting = new Map<number, Handed>();
  /** claim()s waiting for a wake connection's bookkeeping, by its loopback port. */
  private readonly claimers = new Map<number, () => void>();
  private pending = 0;
  handed = 0;

  constructor(private readonly closeFd: (fd: number) => void) {}

  /**
   * Wakes the program's accept() on `port` and keeps `h.fd` for it. Rejects (and leaves h.fd to the caller)
   * when nothing listens on the port.
   */
  async offer(port: number, h: Handed): Promise<void> {
    this.pending++;
    try {
      const wake = net.connect(port, '127.0.0.1');
      wake.on('data', () => undefined);
      wake.on('end', () => wake.destroy());
      await new Promise<void>((resolve, reject) => {
        wake.once('connect', resolve);
        wake.once('error', reject);
      });
      wake.on('error', () => undefined);
      const key = wake.localPort!;
      this.waiting.set(key, h);
      this.claimers.get(key)?.();
      setTimeout(() => {
        if (this.waiting.get(key) === h) {
          this.waiting.delete(key);
          this.closeFd(h.fd);
        }
        wake.destroy();
      }, HANDOFF_TTL_MS).unref();
    } finally {
      // The last offer in flight is settled: a claim still waiting will find nothing more.
      if (--this.pending === 0) for (const wake of [...this.claimers.values()]) wake();
    }
  }

  /**
   * The hand-off whose wake connection came from loopback port `peerPort`, if any. The program's accept() can
   * return before the wake's connect is seen here: then wait (event-driven, at most HANDOFF_CLAIM_WAIT_MS) while
   * offers are in flight.
   */
  async claim(peerPort: number): Promise<Handed | undefined> {
    if (!this.waiting.has(peerPort) && this.pending > 0 && !this.claimers.has(peerPort)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(t);
          this.claimers.delete(peerPort);
          resolve();
        };
        const t = setTimeout(done, HANDOFF_CLAIM_WAIT_MS);
        this.claimers.set(peerPort, done);
      });
    }
    const h = this.waiting.get(peerPort);
    if (h) {
      this.waiting.delete(peerPort);
      this.handed++;
    }
    return h;
  }

  close(): void {
    for (const wake of [...this.claimers.values()]) wake();
    for (const h of this.waiting.values()) this.closeFd(h.fd);
    this.waiting.clear();
  }
}

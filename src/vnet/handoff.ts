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
      setTimeout(() => {
        if (this.waiting.get(key) === h) {
          this.waiting.delete(key);
          this.closeFd(h.fd);
        }
        wake.destroy();
      }, HANDOFF_TTL_MS).unref();
    } finally {
      this.pending--;
    }
  }

  /** The hand-off whose wake connection came from loopback port `peerPort`, if any (waits briefly). */
  async claim(peerPort: number): Promise<Handed | undefined> {
    for (let waited = 0; !this.waiting.has(peerPort) && this.pending > 0 && waited < HANDOFF_CLAIM_WAIT_MS; waited += 5) {
      await new Promise((r) => setTimeout(r, 5));
    }
    const h = this.waiting.get(peerPort);
    if (h) {
      this.waiting.delete(peerPort);
      this.handed++;
    }
    return h;
  }

  close(): void {
    for (const h of this.waiting.values()) this.closeFd(h.fd);
    this.waiting.clear();
  }
}

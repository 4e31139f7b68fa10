/**
 * Handing a connection that the agent made (punched, or relayed) to the program that listens for it.
 *
 * The agent connects to the program's listening port over loopback, which makes the program's accept()
 * return; the shim, inside accept() and before the program sees the descriptor, asks the agent (ACCEPTED)
 * and receives the real socket, which it puts in place of the loopback one (docs/shim-protocol.md). Here:
 * the loopback "wake" connection and the real socket waiting to be claimed, keyed by the wake's local port.
 * The wake socket is bound (to a port of its own, at WAKE_MARK_IP) and registered before it connects, so a claim never waits:
 * by the time the program's accept() can return it, the hand-off is known.
 */
import { HANDOFF_TTL_MS, WAKE_CONNECT_TIMEOUT_MS } from '../constants';

/**
 * The loopback address wake connections come from. The shim asks the agent about a loopback peer at this
 * address only: any other loopback client (`curl` on the same host) is no hand-off and, unless members share
 * this host (sources.ts), no member, so its accept() need not ask. (127.66.0.1 marks self-connects, connect.c.)
 */
export const WAKE_MARK_IP = '127.66.0.2';

export interface Handed {
  fd: number;
  vaddr: string;
  vport: number;
}

/** The addon's socket calls a hand-off needs (native/index.d.ts). */
export interface WakeOps {
  tcpSocket(reuse?: boolean): number;
  bind(fd: number, ip: string, port: number): void;
  localAddress(fd: number): { address: string; port: number };
  connectStart(fd: number, ip: string, port: number): boolean;
  connectWait(fd: number, timeoutMs: number): Promise<void>;
  setLinger0(fd: number): void;
  close(fd: number): void;
}

interface Waiting extends Handed {
  wake: number;
  timer: NodeJS.Timeout;
}

export class Handoffs {
  private readonly waiting = new Map<number, Waiting>();
  handed = 0;

  constructor(private readonly ops: WakeOps) {}

  /**
   * Wakes the program's accept() on `port` and keeps `h.fd` for it. Rejects (and leaves h.fd to the caller)
   * when nothing listens on the port, or the wake connection does not complete in WAKE_CONNECT_TIMEOUT_MS.
   */
  async offer(port: number, h: Handed): Promise<void> {
    const wake = this.ops.tcpSocket(false);
    let key = -1;
    try {
      this.ops.bind(wake, WAKE_MARK_IP, 0);
      key = this.ops.localAddress(wake).port;
      const timer = setTimeout(() => this.expire(key), HANDOFF_TTL_MS);
      timer.unref();
      this.waiting.set(key, { ...h, wake, timer });
      if (!this.ops.connectStart(wake, '127.0.0.1', port)) await this.ops.connectWait(wake, WAKE_CONNECT_TIMEOUT_MS);
    } catch (e) {
      const w = this.waiting.get(key);
      if (key >= 0 && w?.wake !== wake) return; // claimed meanwhile: the program has it
      if (w) {
        clearTimeout(w.timer);
        this.waiting.delete(key);
      }
      this.ops.close(wake);
      throw e;
    }
  }

  private expire(key: number): void {
    const w = this.waiting.get(key);
    if (!w) return;
    this.waiting.delete(key);
    this.ops.close(w.fd);
    this.dropWake(w.wake);
  }

  /**
   * Closes our end of a wake connection with a reset (SO_LINGER 0): a plain close would leave it in TIME_WAIT
   * for a minute on its bound port, and a thousand hand-offs would then hold a thousand ephemeral ports, which
   * the punch ports (bound with SO_REUSEADDR, which such a socket does not share) then run into. The reset
   * reaches only the program's end, which the shim has replaced or is about to.
   */
  private dropWake(fd: number): void {
    try {
      this.ops.setLinger0(fd);
    } catch {
      /* closing it is what matters */
    }
    this.ops.close(fd);
  }

  /** The hand-off whose wake connection came from loopback port `peerPort`, if any. */
  claim(peerPort: number): Handed | undefined {
    const w = this.waiting.get(peerPort);
    if (!w) return undefined;
    this.waiting.delete(peerPort);
    clearTimeout(w.timer);
    // The program's end of the wake connection is replaced by the real socket; ours is done.
    this.dropWake(w.wake);
    this.handed++;
    return { fd: w.fd, vaddr: w.vaddr, vport: w.vport };
  }

  close(): void {
    for (const w of this.waiting.values()) {
      clearTimeout(w.timer);
      this.ops.close(w.fd);
      this.dropWake(w.wake);
    }
    this.waiting.clear();
  }
}

/**
 * What the virtual network needs from the member it runs in, as seen by the broker's parts: the member list,
 * predictions, links and a way to send broker messages (`VnetNetwork`), and the addon's socket calls
 * (`SocketOps`). Both are interfaces so that the connection logic runs in memory in tests.
 */
import type { Endpoint, MemberInfo, PathKind } from '../wire/messages';
import type { VnetMessage } from './messages';
import type { WakeOps } from './handoff';
import type { KernelSplice } from './relay';

export interface VnetNetwork {
  /** This member (`network`: the virtual network's CIDR, once known). */
  self(): { id: number; addr: string; network?: string } | null;
  members(): MemberInfo[];
  /** Member `id` (optional: an index; without it, a search of members()). */
  member?(id: number): MemberInfo | undefined;
  /** The member at virtual address `vaddr` (optional, as `member`). */
  memberAt?(vaddr: string): MemberInfo | undefined;
  /** This member's predicted external endpoint for its local port (null: unpredictable). */
  predictOwn(localPort: number): Endpoint | null;
  /** The path of the open peer link to member `id`, if there is one. */
  linkPath(id: number): PathKind | undefined;
  /** Opens (or uses) the link to member `id` and returns its path (first contact: one network round trip). */
  ensureLink(id: number): Promise<PathKind>;
  /** Sends to member `to`; `SEED` (0) is the seed's relay. */
  send(to: number, msg: VnetMessage): void;
  /** The seed's address as this member reaches it, when the seed can relay (null: not connected). */
  seedIp(): string | null;
  /**
   * `data` sealed by this member for member `to` (src/crypto/origin.ts), null when `to` is unknown. Absent only
   * in memory tests of other parts; the agent's network always has both.
   */
  seal?(to: number, data: Uint8Array): Uint8Array | null;
  /** What member `from` sealed for us, or null when it did not (forged, altered, unknown member). */
  unseal?(from: number, sealed: Uint8Array): Uint8Array | null;
}

/** The id that stands for the seed in broker messages (member ids start at 1). */
export const SEED = 0;

/** The socket operations the broker needs (the native addon; a fake in tests): a hand-off's, and the relay's. */
export interface SocketOps extends WakeOps {
  /** The kernel relay (relay.ts, KernelSplice); absent in memory tests. */
  splice?: KernelSplice['splice'];
  spliceActive?: KernelSplice['spliceActive'];
  spliceAbortAll?: KernelSplice['spliceAbortAll'];
  tcpLiveness?: KernelSplice['tcpLiveness'];
}

/** Member look-ups over a VnetNetwork. */
export class Members {
  constructor(private readonly netw: VnetNetwork) {}

  byAddr(vaddr: string): MemberInfo | undefined {
    return this.netw.memberAt ? this.netw.memberAt(vaddr) : this.netw.members().find((m) => m.addr === vaddr);
  }

  byId(id: number): MemberInfo | undefined {
    return this.netw.member ? this.netw.member(id) : this.netw.members().find((m) => m.id === id);
  }

  /** This member's own entry. */
  me(): MemberInfo | undefined {
    const self = this.netw.self();
    return self ? this.byId(self.id) : undefined;
  }
}

export function isLoopback(ip: string): boolean {
  return ip.startsWith('127.');
}

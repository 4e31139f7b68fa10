/**
 * The member this process is, as everything above the control plane sees it (the virtual network, the
 * control socket, `boxer status` and `boxer ping`): one interface that both an Agent (`boxer run`) and the
 * seed's own member (`boxer seed -- CMD`, seed-member.ts) implement, so each consumer is wired once.
 */
import type { Endpoint, MemberInfo, PathKind } from '../wire/messages';
import type { LinkStatus } from '../traversal/links';

export interface MemberSelf {
  id: number;
  name: string;
  addr: string;
  network: string;
}

export interface LocalMember {
  /** Who this member is (null before the first welcome). */
  readonly self: MemberSelf | null;
  /** Every member, this one included, by id. */
  list(): MemberInfo[];
  /** This member's external endpoint for a local port, as other members would see a connection from it (null: unpredictable). */
  vnetEndpoint(localPort: number): Endpoint | null;
  /** The open peer links. */
  links(): LinkStatus[];
  /** The path of the open link to member `id` (optional: a look-up; without it, a search of links()). */
  linkPath?(id: number): PathKind | undefined;
  /** Opens (or uses) the link to a member and measures its round-trip time. */
  ping(id: number): Promise<{ path: PathKind; endpoint: string; rttMs: number }>;
  /** Sends an opaque `vnet` payload to a member over whatever path reaches it. */
  sendTo(id: number, payload: Uint8Array): Promise<void>;
  /** Sends a vnet payload to the seed's relay of program connections; false when there is none to reach. */
  sendToSeed(payload: Uint8Array): boolean;
  /** The seed's address as this member reaches it (null: not connected, or this is the seed). */
  seedAddressNow(): string | null;
  /** Drops every peer link (they reopen on demand); returns how many there were. */
  closeLinks(): number;
  /** What `boxer status` shows beyond the member list: the role, NAT kind, links, the seed connection. */
  statusExtra(): Record<string, unknown>;
  on(ev: 'change', fn: () => void): unknown;
  on(ev: 'vnet', fn: (from: number, payload: Uint8Array) => void): unknown;
}

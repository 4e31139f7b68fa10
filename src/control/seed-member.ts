/**
 * The seed's own member, when the seed runs a command (`boxer seed -- CMD`): an `open` member on the seed's
 * host, with an id, an address and a name like any member but no connection to a seed (it is the seed), and
 * peer links of its own. It implements LocalMember, as an Agent does, so `boxer seed` wires the virtual
 * network and the control socket exactly as `boxer run` does.
 */
import { EventEmitter } from 'node:events';
import type { KeyPair } from '../crypto/keys';
import type { Endpoint, MemberInfo, PathKind } from '../wire/messages';
import { Peers } from '../traversal/peers';
import type { PeerIo } from '../traversal/io';
import type { LinkStatus } from '../traversal/links';
import type { Seed } from './seed';
import type { LocalMember, MemberSelf } from './local-member';

export interface SeedMemberOptions {
  psk: Uint8Array;
  keys: KeyPair;
  io: PeerIo;
  /** The seed's address as members reach it, or null (listening on 0.0.0.0: each member knows it). */
  publicIp: string | null;
}

export class SeedMember extends EventEmitter<{ change: []; vnet: [from: number, payload: Uint8Array] }> implements LocalMember {
  readonly self: MemberSelf;
  private readonly peers: Peers;

  constructor(
    private readonly seed: Seed,
    opts: SeedMemberOptions,
  ) {
    super();
    const info = seed.list().find((m) => m.id === seed.selfId);
    if (!info) throw new Error('the seed runs no member (it was made without `self`)');
    this.self = { id: info.id, name: info.name, addr: info.addr, network: seed.cidr.text };
    this.peers = new Peers(
      {
        selfId: () => seed.selfId ?? 0,
        member: (id) => seed.member(id),
        members: () => seed.list(),
        toSeed: (m) => seed.fromSelf(m),
        seedConnected: () => true,
        forget: () => false,
      },
      { psk: opts.psk, keys: opts.keys, io: opts.io },
    );
    seed.selfSink = this.peers;
    // On a routable host: `open`.
    this.peers.mapping = { kind: 'open', ip: opts.publicIp, xor: null, offset: null };
    seed.on('change', () => this.emit('change'));
    this.peers.on('vnet', (from, payload) => this.emit('vnet', from, payload));
  }

  /** Starts the peer-link listener and announces its port to joining members. */
  async start(): Promise<void> {
    this.seed.setSelfListener(await this.peers.start());
  }

  list(): MemberInfo[] {
    return this.seed.list();
  }

  vnetEndpoint(localPort: number): Endpoint | null {
    return this.peers.predict(localPort);
  }

  links(): LinkStatus[] {
    return this.peers.status();
  }

  ping(id: number): Promise<{ path: PathKind; endpoint: string; rttMs: number }> {
    return this.peers.ping(id);
  }

  sendTo(id: number, payload: Uint8Array): Promise<void> {
    return this.peers.sendTo(id, payload);
  }

  /** The seed's own member relays through its own broker (it is open): it needs no seed relay. */
  sendToSeed(): boolean {
    return false;
  }

  seedAddressNow(): string | null {
    return null;
  }

  closeLinks(): number {
    return this.peers.closeLinks();
  }

  statusExtra(): Record<string, unknown> {
    return { role: 'seed', joins: this.seed.stats.joins, nat: 'open', links: this.peers.status() };
  }

  close(): Promise<void> {
    return this.peers.close();
  }
}

/**
 * The connection broker of the virtual network: it answers the shim's requests (docs/shim-protocol.md) so that
 * a program's own kernel socket connects end to end to the far member, and plays the far side of those
 * connections for this member's programs. It wires the parts, each in its own file:
 *
 *   routes.ts        the route to each member (the decision: direct, punch, relay)
 *   client.ts        the client side: CONNECT, announcements and punch requests, relay fallback, outcomes
 *   server.ts        the far side: punch back, connect to a relay, hand-off into accept() (handoff.ts)
 *   names.ts         who an accepted connection is from (sources.ts: who it can be from); RESOLVE
 *   relay-server.ts  this member as a relay (an `open` member), over the data relay (relay.ts)
 *
 *  - direct: the program's socket connects to the far member's address at the virtual port; the far program's
 *    listener accepts it. The client's broker tells the far broker (`open`) which endpoint the connection
 *    comes from, so the far program's accept()/getpeername() show the client's virtual address and port.
 *  - punched: the client picks a port M in the far member's local range and connects to the far NAT's
 *    predicted external port for M, at once (no network wait inside connect()); the far broker binds M and
 *    connects back to the client's predicted external endpoint: a TCP simultaneous open through both NATs.
 *    The far broker hands the punched socket into its program's accept(). Nothing listening: it resets the
 *    connection and reports ECONNREFUSED, which the shim gives as the socket's error.
 *  - relayed: through an `open` member's relay (or the seed's), when neither of the above exists.
 *
 * Everything that touches the network is behind `VnetNetwork` and `SocketOps` (network.ts), so the logic runs
 * in memory in tests.
 */
import os from 'node:os';
import type { Endpoint, MemberInfo } from '../wire/messages';
import { MAX_PROGRAM_NAME, MAX_SHIM_PROGRAMS, VNET_STALE_MS } from '../constants';
import { logger } from '../util/log';
import type { VnetMessage } from './messages';
import { isLoopback, Members, type SocketOps, type VnetNetwork } from './network';
import { ConnectClient, type ConnectAnswer } from './client';
import { ConnectServer, type AcceptAnswer } from './server';
import { AcceptNamer, Resolver } from './names';
import { RelayServer } from './relay-server';
import { DataRelay } from './relay';
import { formatRoutes, type Route } from './routes';
import { directSources, formatSources } from './sources';
import { ServiceAddresses } from './services';

export type { ConnectAnswer } from './client';
export type { AcceptAnswer } from './server';
export type { VnetMessage } from './messages';
export { SEED, type SocketOps, type VnetNetwork } from './network';

const log = logger('vnet');

export interface BrokerStats {
  connects: number;
  direct: number;
  punched: number;
  relayed: number;
  refused: number;
  handedOff: number;
  /** ACCEPTED requests: accepted connections the shim could not name from its route table. */
  acceptsAsked: number;
}

export class Broker {
  private readonly client: ConnectClient;
  private readonly server: ConnectServer;
  private readonly namer: AcceptNamer;
  private readonly resolver: Resolver;
  private readonly relayServer: RelayServer;
  /** This member's data relay (its counters for `boxer status`). */
  readonly relay: DataRelay;
  private readonly members: Members;
  private acceptsAsked = 0;
  /** Service addresses handed out to this member's programs (services.ts). */
  readonly services = new ServiceAddresses();
  /** Round robin over a service's members for CONNECTs to its address (the shim picks itself from its table). */
  private serviceTurn = 0;
  /** Called when the route table must be written now (a service address was handed out). */
  onRoutesChanged?: () => void;
  /** Programs whose shim reported in (pid -> program name). */
  readonly shims = new Map<number, string>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly netw: VnetNetwork,
    ops: SocketOps,
  ) {
    this.members = new Members(netw);
    this.client = new ConnectClient(netw);
    this.server = new ConnectServer(netw, ops);
    this.namer = new AcceptNamer(netw);
    this.resolver = new Resolver(netw, this.services, () => this.onRoutesChanged?.());
    const relayIp = () => {
      const me = this.members.me();
      return me?.ext && me.nat === 'open' ? me.ext.ip : null;
    };
    this.relay = new DataRelay(ops.splice ? (ops as Required<SocketOps>) : undefined);
    this.relayServer = new RelayServer({ member: (id) => this.members.byId(id), relayIp, send: (to, m) => netw.send(to, m) }, this.relay);
    this.sweeper = setInterval(() => {
      this.namer.sweep();
      this.client.sweep();
    }, VNET_STALE_MS);
    this.sweeper.unref();
  }

  get stats(): BrokerStats {
    return { ...this.client.stat, ...this.server.stat, handedOff: this.server.handoffs.handed, acceptsAsked: this.acceptsAsked };
  }

  hello(pid: number, name: string): void {
    // Bounded: a program may send any number of HELLOs with any names.
    if (!this.shims.has(pid) && this.shims.size >= MAX_SHIM_PROGRAMS) this.shims.delete(this.shims.keys().next().value as number);
    this.shims.set(pid, name.slice(0, MAX_PROGRAM_NAME));
    log.debug('a program loaded the shim', { pid, program: name });
  }

  listen(port: number): void {
    this.server.listen(port);
    this.onListen?.(port);
  }

  /** Called when a punched connection's outcome is known (the far side's `result`, or its member is gone). */
  set onOutcome(fn: ((connId: bigint, errno: number) => void) | undefined) {
    this.client.onSettled = fn;
  }

  /** Called on every LISTEN a program's shim reports (a member providing services is ready then). */
  onListen?: (port: number) => void;

  /** The ports this member's programs listen on. */
  listening(): number[] {
    return this.server.listening();
  }

  unlisten(port: number): void {
    this.server.unlisten(port);
  }

  /** The route to member `far` now, from what is known without a network wait. */
  route(far: MemberInfo): Route {
    return this.client.route(far);
  }

  /**
   * The route table for the shim (rewritten by the caller whenever members or links change). Direct routes
   * are `direct-quiet` when the far side names us by our address: the shim then tells us nothing, and
   * `stats.direct` does not count those connections.
   */
  routes(): string {
    const quiet = this.client.quiet();
    const members = this.netw.members();
    return (
      formatRoutes(
        members.map((m) => {
          const route = this.route(m);
          // Not over a LAN (a private address): the far side needs our announcement there.
          if (quiet && route.kind === 'direct' && route.ip === m.ext?.ip) route.quiet = true;
          return { id: m.id, addr: m.addr, route, ext: m.ext?.ip };
        }),
      ) +
      formatSources(directSources(this.members.me(), members)) +
      this.services.lines(members)
    );
  }

  /** CONNECT (client.ts); to a service's address: to one of its members, in turn, as the shim would pick. */
  connect(vaddr: string, vport: number, localPort: number, budgetMs?: number): Promise<ConnectAnswer> {
    const service = this.services.serviceAt(vaddr);
    if (service) {
      const ms = ServiceAddresses.members(service, this.netw.members());
      if (!ms.length) return Promise.resolve({ errno: os.constants.errno.ECONNREFUSED });
      vaddr = ms[this.serviceTurn++ % ms.length].addr;
    }
    return this.client.connect(vaddr, vport, localPort, budgetMs);
  }

  /** CONNECTING (client.ts). */
  connecting(far: MemberInfo | string, vport: number, localPort: number, real: Endpoint, punch: number, connId: bigint): void {
    this.client.connecting(far, vport, localPort, real, punch, connId);
  }

  /** CONNECT_RESULT (client.ts). */
  result(connId: bigint, waitMs: number): Promise<number> {
    return this.client.result(connId, waitMs);
  }

  /** ACCEPTED: who the program's new connection is from; for a punched or relayed one, the real socket. */
  accepted(_listenPort: number, peer: Endpoint): Promise<AcceptAnswer> {
    this.acceptsAsked++;
    if (isLoopback(peer.ip)) {
      const h = this.server.handoffs.claim(peer.port);
      if (h) return Promise.resolve({ errno: 0, vaddr: h.vaddr, vport: h.vport, fd: h.fd });
    }
    return this.namer.name(peer);
  }

  /** The member list changed: connections pending toward a member that is gone fail now (client.ts). */
  membersChanged(): number {
    return this.client.membersChanged();
  }

  /** accept()s waiting for an announcement (names.ts). */
  get acceptWaiting(): { waiting: number; keys: number } {
    return this.namer.pending;
  }

  /** RESOLVE (names.ts). */
  resolve(name: string): string[] {
    return this.resolver.resolve(name);
  }

  /** A message from another member's broker (or the seed's relay). */
  onMessage(from: number, msg: VnetMessage): void {
    switch (msg.k) {
      case 'result':
        this.client.settle(msg.cid, msg.errno);
        for (const cid of msg.more ?? []) this.client.settle(cid, msg.errno);
        return;
      case 'relay-ok':
        return this.client.onRelayOk(msg);
      case 'relay-req':
      case 'relay-cancel':
        return this.relayServer.onMessage(from, msg);
      case 'relay-open':
        void this.server.acceptRelayed(from, msg);
        return;
      case 'open':
        break;
    }
    const client = this.members.byId(from);
    if (!client) return;
    if (msg.punch === null) {
      // Direct: remember where it comes from so that accept() can name it.
      const ext = msg.cext ?? { ip: client.ext?.ip ?? '0.0.0.0', port: 0 };
      log.debug('a member announced a connection', { from: client.name, endpoint: `${ext.ip}:${ext.port}`, vport: msg.vport });
      this.namer.announce(client, ext, msg.cport);
      return;
    }
    void this.server.punchBack(from, client, msg);
  }

  close(): void {
    clearInterval(this.sweeper);
    this.server.close();
    this.relayServer.close();
  }
}

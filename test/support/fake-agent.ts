/**
 * A fake Boxer agent for the shim's tests: speaks docs/shim-protocol.md on one Unix socket per member and maps
 * virtual addresses to 127.0.0.1:
 *   - CONNECT to a member's vaddr:vport goes to 127.0.0.1:vport when the member's shim reported LISTEN on vport
 *     (or to an explicit mapping); to a reserved closed port (ECONNREFUSED through the kernel, and
 *     CONNECT_RESULT says ECONNREFUSED) when the member listens on nothing there; EHOSTUNREACH for an unknown
 *     member.
 *   - ACCEPTED: a connection the fake agent made itself to wake an accept() (handOff) is answered with the
 *     real socket (SCM_RIGHTS, via the addon's sendFd); a connection from a CONNECT it answered is named by
 *     the client's virtual address and port; anything else gets ENOENT.
 *   - RESOLVE: services registered with addService, rotated on each lookup.
 *   - CONNECTING (no reply): the shim connected from the route table (writeRoutes); its conn_id gets the same
 *     outcome as a CONNECT would (0 when the far member listens on vport, else ECONNREFUSED) for
 *     CONNECT_RESULT, and its local port names the client in ACCEPTED.
 * Every message received is recorded in `log` for the tests to check.
 */
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { connectedAddonSocket, native, tmpDir } from './native';
import { MSG, FRAME_FLAG_FD, FrameReader, acceptedReply, connectReply, decodeRequest, encodeFrame, errnoReply, resolveReply, writeWithFd, outcomeNotice } from '../../src/ipc/shim-codec';
import { WAKE_MARK_IP } from '../../src/vnet/handoff';

const E = os.constants.errno;

// The channel's codec is the real agent's (src/ipc/shim-codec.ts); what the fake does with requests is its own.
export { MSG };

export interface LogEntry {
  member: string;
  type: number;
  pid?: number;
  name?: string;
  vaddr?: string;
  vport?: number;
  localPort?: number;
  port?: number;
  peer?: string;
  /** CONNECTING */
  realIp?: string;
  realPort?: number;
  punchPort?: number;
  connId?: bigint;
}

export interface Member {
  vaddr: string;
  sockPath: string;
  listens: Set<number>;
  /** explicit vport -> 127.0.0.1 port mappings (for Node servers not under the shim) */
  ports: Map<number, number>;
}


interface Handoff {
  fd: number;
  vaddr: string;
  vport: number;
}

export class FakeAgent {
  readonly dir = tmpDir('boxer-fake-agent-');
  readonly members = new Map<string, Member>();
  readonly services = new Map<string, string[]>();
  readonly log: LogEntry[] = [];
  /** The route table the members' shims read (BOXER_ROUTES_FILE): see writeRoutes. */
  readonly routesFile = path.join(this.dir, 'routes');
  /** When set, requests are read but never answered (an agent that hangs). */
  silent = false;
  /** When set, CONNECTING gets a reply anyway (an agent that breaks the contract: the shim must drop it). */
  replyToConnecting = false;
  private servers: net.Server[] = [];
  private sockets = new Set<net.Socket>();
  private nextConn = 1n;
  private outcomes = new Map<bigint, number>();
  private clientsByLocalPort = new Map<number, { vaddr: string; port: number }>();
  private handoffs = new Map<number, Handoff>();
  private pendingHandoffs = 0;
  private closedPortFd: number;
  readonly closedPort: number;
  private extra: { close(): void }[] = [];

  constructor() {
    const n = native();
    // A bound, never-listening port: connects to it are refused by the kernel.
    this.closedPortFd = n.tcpSocket();
    n.bind(this.closedPortFd, '127.0.0.1', 0);
    this.closedPort = n.localAddress(this.closedPortFd).port;
  }

  async addMember(vaddr: string): Promise<Member> {
    const sockPath = path.join(this.dir, `${vaddr}.sock`);
    const m: Member = { vaddr, sockPath, listens: new Set(), ports: new Map() };
    const server = net.createServer((sock) => this.serve(m, sock));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(sockPath, () => resolve());
    });
    this.servers.push(server);
    this.members.set(vaddr, m);
    return m;
  }

  addService(name: string, addrs: string[]): void {
    this.services.set(name, [...addrs]);
  }

  messages(member: string, type?: number): LogEntry[] {
    return this.log.filter((e) => e.member === member && (type === undefined || e.type === type));
  }

  /** Waits (bounded) until `count` messages of `type` from `member` arrived; returns them. */
  async waitMessages(member: string, type: number, count = 1, timeoutMs = 5000): Promise<LogEntry[]> {
    const end = Date.now() + timeoutMs;
    while (this.messages(member, type).length < count && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    return this.messages(member, type);
  }

  /**
   * Writes the route table as the agent does (a temporary file, then rename): lines `ID VADDR KIND IP XOR OFFSET
   * LO HI`, then (unless `opts.from` says otherwise) a `from` line saying that members' connections come from 127.0.0.1, any
   * port: every member of this fake network is on loopback (src/vnet/sources.ts).
   */
  writeRoutes(lines: string[], opts: { from?: string[] } = {}): void {
    const tmp = `${this.routesFile}.tmp`;
    const from = opts.from ?? ['0 0.0.0.0 from 127.0.0.1 0 0 1 65535'];
    fs.writeFileSync(tmp, [...lines, ...from].map((l) => `${l}\n`).join(''));
    fs.renameSync(tmp, this.routesFile);
  }

  private serve(m: Member, sock: net.Socket): void {
    this.sockets.add(sock);
    const reader = new FrameReader();
    sock.on('close', () => this.sockets.delete(sock));
    sock.on('error', () => undefined);
    sock.on('data', (d) => {
      let frames;
      try {
        frames = reader.push(d);
      } catch {
        sock.destroy();
        return;
      }
      for (const { type, id, body } of frames) void this.handle(m, sock, type, id, body);
    });
  }

  private reply(sock: net.Socket, type: number, id: number, body: Buffer, fd?: number): void {
    if (this.silent || sock.destroyed) return;
    if (fd === undefined) sock.write(encodeFrame(type, id, body));
    else writeWithFd(sock, encodeFrame(type, id, body, FRAME_FLAG_FD), fd, native().sendFd, () => native().close(fd)); // the program has its own descriptor then
  }

  private async handle(m: Member, sock: net.Socket, type: number, id: number, body: Buffer): Promise<void> {
    if (!Object.values(MSG).includes(type as never)) return void sock.destroy();
    const q = decodeRequest(type, body);
    switch (q.type) {
      case MSG.HELLO:
        this.log.push({ member: m.vaddr, type, pid: q.pid, name: q.name });
        return this.reply(sock, type, id, errnoReply(0));
      case MSG.CONNECT: {
        this.log.push({ member: m.vaddr, type, vaddr: q.vaddr, vport: q.vport, localPort: q.localPort });
        const far = this.members.get(q.vaddr);
        if (!far) return this.reply(sock, type, id, connectReply({ errno: E.EHOSTUNREACH }));
        let realPort = far.ports.get(q.vport) ?? (far.listens.has(q.vport) ? q.vport : 0);
        const outcome = realPort ? 0 : E.ECONNREFUSED;
        if (!realPort) realPort = this.closedPort;
        const conn = this.nextConn++;
        this.outcomes.set(conn, outcome);
        this.clientsByLocalPort.set(q.localPort, { vaddr: m.vaddr, port: q.localPort });
        return this.reply(sock, type, id, connectReply({ errno: 0, real: { ip: '127.0.0.1', port: realPort }, connId: conn }));
      }
      case MSG.CONNECTING: {
        const { vaddr, vport, localPort, connId } = q;
        this.log.push({ member: m.vaddr, type, vaddr, vport, localPort, realIp: q.real.ip, realPort: q.real.port, punchPort: q.punchPort, connId });
        const far = this.members.get(vaddr);
        const outcome = far && (far.listens.has(vport) || far.ports.has(vport)) ? 0 : E.ECONNREFUSED;
        this.outcomes.set(connId, outcome);
        // As the agent does: a refusal is told unasked (OUTCOME), before the shim's connect can end.
        if (outcome) sock.write(outcomeNotice(connId, outcome));
        this.clientsByLocalPort.set(localPort, { vaddr: m.vaddr, port: localPort });
        if (this.replyToConnecting) this.reply(sock, type, id, errnoReply(0));
        return; // no reply
      }
      case MSG.CONNECT_RESULT:
        this.log.push({ member: m.vaddr, type });
        return this.reply(sock, type, id, errnoReply(this.outcomes.get(q.connId) ?? E.EINPROGRESS));
      case MSG.LISTEN:
      case MSG.UNLISTEN:
        this.log.push({ member: m.vaddr, type, port: q.port });
        if (q.type === MSG.LISTEN) m.listens.add(q.port);
        else m.listens.delete(q.port);
        return this.reply(sock, type, id, errnoReply(0));
      case MSG.ACCEPTED:
        return this.accepted(m, sock, id, q.listenPort, q.peer.ip, q.peer.port);
      case MSG.RESOLVE: {
        this.log.push({ member: m.vaddr, type, name: q.name });
        const addrs = this.services.get(q.name) ?? [];
        this.reply(sock, type, id, resolveReply(addrs, E.ENOENT));
        if (addrs.length) addrs.push(addrs.shift()!); // round robin
        return;
      }
    }
  }

  private async accepted(m: Member, sock: net.Socket, id: number, listenPort: number, peer: string, peerPort: number): Promise<void> {
    const type = MSG.ACCEPTED;
    this.log.push({ member: m.vaddr, type, port: listenPort, peer: `${peer}:${peerPort}` });
    // A hand-off may still be registering its wake-up connection: wait for it briefly.
    for (let i = 0; i < 100 && peer === WAKE_MARK_IP && !this.handoffs.has(peerPort) && this.pendingHandoffs > 0; i++) await new Promise((r) => setTimeout(r, 5));
    const h = peer === WAKE_MARK_IP ? this.handoffs.get(peerPort) : undefined;
    if (h) {
      this.handoffs.delete(peerPort);
      return this.reply(sock, type, id, acceptedReply({ errno: 0, vaddr: h.vaddr, vport: h.vport }), h.fd);
    }
    // A client that connected from the route table announced itself with CONNECTING, which (no reply to
    // wait for) may arrive after its SYN: wait for it briefly, as the real agent does.
    for (let i = 0; i < 40 && peer === '127.0.0.1' && !this.clientsByLocalPort.has(peerPort); i++) await new Promise((r) => setTimeout(r, 5));
    const c = peer === '127.0.0.1' ? this.clientsByLocalPort.get(peerPort) : undefined;
    this.reply(sock, type, id, c ? acceptedReply({ errno: 0, vaddr: c.vaddr, vport: c.port }) : errnoReply(E.ENOENT));
  }

  /**
   * Plays the far side of a punched connection into member `m`'s accept() on `listenPort`: makes a real TCP
   * connection between an addon socket and `remote` (a Node socket the test keeps), wakes the program's
   * accept() with a loopback connection, and answers its ACCEPTED with the real socket as peer vaddr:vport.
   */
  async handOff(listenPort: number, vaddr: string, vport: number): Promise<net.Socket> {
    this.pendingHandoffs++;
    try {
      const { fd, peer: remote } = await connectedAddonSocket();
      this.sockets.add(remote);
      const wake = net.connect({ port: listenPort, host: '127.0.0.1', localAddress: WAKE_MARK_IP });
      wake.on('error', () => undefined);
      wake.on('data', () => undefined);
      wake.on('end', () => wake.destroy());
      this.sockets.add(wake);
      await new Promise<void>((r) => wake.once('connect', () => r()));
      this.handoffs.set(wake.localPort!, { fd, vaddr, vport });
      return remote;
    } finally {
      this.pendingHandoffs--;
    }
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    for (const h of this.handoffs.values()) native().close(h.fd);
    this.handoffs.clear();
    native().close(this.closedPortFd);
    for (const e of this.extra) e.close();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

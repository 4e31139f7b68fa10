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
import { native, tmpDir } from './helpers';
import { MSG, HEADER, frame, ipBytes, ipAt } from '../../src/ipc/shim-server';
import { WAKE_MARK_IP } from '../../src/vnet/handoff';

const E = os.constants.errno;

// The channel's framing is the real agent's (src/ipc/shim-server.ts); what the fake does with requests is its own.
export { MSG };
const HDR = HEADER;
const ipToBytes = ipBytes;
const bytesToIp = ipAt;

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
    let buf = Buffer.alloc(0);
    sock.on('close', () => this.sockets.delete(sock));
    sock.on('error', () => undefined);
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= HDR) {
        const len = buf.readUInt32LE(0);
        if (len < HDR || len > 4096) {
          sock.destroy();
          return;
        }
        if (buf.length < len) break;
        const type = buf.readUInt16LE(4);
        const id = buf.readUInt32LE(8);
        const body = buf.subarray(HDR, len);
        buf = buf.subarray(len);
        void this.handle(m, sock, type, id, Buffer.from(body));
      }
    });
  }

  private reply(sock: net.Socket, type: number, id: number, body: Buffer, fd?: number): void {
    if (this.silent || sock.destroyed) return;
    if (fd === undefined) {
      sock.write(frame(type, id, body));
      return;
    }
    const f = frame(type, id, body, 0x1);
    const ufd = (sock as unknown as { _handle: { fd: number } })._handle.fd;
    // Node's own write queue must be empty so the bytes keep their order.
    const send = () => {
      const sent = native().sendFd(ufd, fd, f);
      if (sent < f.length) sock.write(f.subarray(sent));
    };
    if (sock.writableLength === 0) send();
    else sock.once('drain', send);
  }

  private async handle(m: Member, sock: net.Socket, type: number, id: number, body: Buffer): Promise<void> {
    const errOnly = (e: number) => {
      const b = Buffer.alloc(4);
      b.writeInt32LE(e, 0);
      return b;
    };
    switch (type) {
      case MSG.HELLO: {
        this.log.push({ member: m.vaddr, type, pid: body.readUInt32LE(0), name: body.subarray(4).toString() });
        this.reply(sock, type, id, errOnly(0));
        return;
      }
      case MSG.CONNECT: {
        const vaddr = bytesToIp(body, 0);
        const vport = body.readUInt16LE(4);
        const localPort = body.readUInt16LE(6);
        this.log.push({ member: m.vaddr, type, vaddr, vport, localPort });
        const far = this.members.get(vaddr);
        const r = Buffer.alloc(20);
        if (!far) {
          r.writeInt32LE(E.EHOSTUNREACH, 0);
          this.reply(sock, type, id, r);
          return;
        }
        let realPort = far.ports.get(vport) ?? (far.listens.has(vport) ? vport : 0);
        const outcome = realPort ? 0 : E.ECONNREFUSED;
        if (!realPort) realPort = this.closedPort;
        const conn = this.nextConn++;
        this.outcomes.set(conn, outcome);
        this.clientsByLocalPort.set(localPort, { vaddr: m.vaddr, port: localPort });
        r.writeInt32LE(0, 0);
        ipToBytes('127.0.0.1').copy(r, 4);
        r.writeUInt16LE(realPort, 8);
        r.writeBigUInt64LE(conn, 12);
        this.reply(sock, type, id, r);
        return;
      }
      case MSG.CONNECTING: {
        const vaddr = bytesToIp(body, 0);
        const vport = body.readUInt16LE(4);
        const localPort = body.readUInt16LE(6);
        const connId = body.readBigUInt64LE(16);
        this.log.push({
          member: m.vaddr,
          type,
          vaddr,
          vport,
          localPort,
          realIp: bytesToIp(body, 8),
          realPort: body.readUInt16LE(12),
          punchPort: body.readUInt16LE(14),
          connId,
        });
        const far = this.members.get(vaddr);
        this.outcomes.set(connId, far && (far.listens.has(vport) || far.ports.has(vport)) ? 0 : E.ECONNREFUSED);
        this.clientsByLocalPort.set(localPort, { vaddr: m.vaddr, port: localPort });
        if (this.replyToConnecting) this.reply(sock, type, id, errOnly(0));
        return; // no reply
      }
      case MSG.CONNECT_RESULT: {
        const conn = body.readBigUInt64LE(0);
        this.log.push({ member: m.vaddr, type });
        this.reply(sock, type, id, errOnly(this.outcomes.get(conn) ?? E.EINPROGRESS));
        return;
      }
      case MSG.LISTEN:
      case MSG.UNLISTEN: {
        const port = body.readUInt16LE(0);
        this.log.push({ member: m.vaddr, type, port });
        if (type === MSG.LISTEN) m.listens.add(port);
        else m.listens.delete(port);
        this.reply(sock, type, id, errOnly(0));
        return;
      }
      case MSG.ACCEPTED: {
        const listenPort = body.readUInt16LE(0);
        const peer = bytesToIp(body, 4);
        const peerPort = body.readUInt16LE(8);
        this.log.push({ member: m.vaddr, type, port: listenPort, peer: `${peer}:${peerPort}` });
        // A hand-off may still be registering its wake-up connection: wait for it briefly.
        for (let i = 0; i < 100 && peer === WAKE_MARK_IP && !this.handoffs.has(peerPort) && this.pendingHandoffs > 0; i++)
          await new Promise((r) => setTimeout(r, 5));
        const r = Buffer.alloc(12);
        const h = peer === WAKE_MARK_IP ? this.handoffs.get(peerPort) : undefined;
        if (h) {
          this.handoffs.delete(peerPort);
          ipToBytes(h.vaddr).copy(r, 4);
          r.writeUInt16LE(h.vport, 8);
          this.reply(sock, type, id, r, h.fd);
          native().close(h.fd); // the program has its own descriptor now
          return;
        }
        // A client that connected from the route table announced itself with CONNECTING, which (no reply to
        // wait for) may arrive after its SYN: wait for it briefly, as the real agent does.
        for (let i = 0; i < 40 && peer === '127.0.0.1' && !this.clientsByLocalPort.has(peerPort); i++) await new Promise((r) => setTimeout(r, 5));
        const c = peer === '127.0.0.1' ? this.clientsByLocalPort.get(peerPort) : undefined;
        if (c) {
          ipToBytes(c.vaddr).copy(r, 4);
          r.writeUInt16LE(c.port, 8);
          this.reply(sock, type, id, r);
          return;
        }
        this.reply(sock, type, id, errOnly(E.ENOENT));
        return;
      }
      case MSG.RESOLVE: {
        const name = body.toString();
        this.log.push({ member: m.vaddr, type, name });
        const addrs = this.services.get(name);
        if (!addrs || addrs.length === 0) {
          this.reply(sock, type, id, errOnly(E.ENOENT));
          return;
        }
        const r = Buffer.alloc(8 + 4 * addrs.length);
        r.writeUInt32LE(addrs.length, 4);
        addrs.forEach((a, i) => ipToBytes(a).copy(r, 8 + 4 * i));
        addrs.push(addrs.shift()!); // round robin
        this.reply(sock, type, id, r);
        return;
      }
      default:
        sock.destroy();
    }
  }

  /**
   * Plays the far side of a punched connection into member `m`'s accept() on `listenPort`: makes a real TCP
   * connection between an addon socket and `remote` (a Node socket the test keeps), wakes the program's
   * accept() with a loopback connection, and answers its ACCEPTED with the real socket as peer vaddr:vport.
   */
  async handOff(listenPort: number, vaddr: string, vport: number): Promise<net.Socket> {
    const n = native();
    this.pendingHandoffs++;
    try {
      const server = net.createServer();
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      const remoteP = new Promise<net.Socket>((r) => server.once('connection', r));
      const fd = n.tcpSocket();
      n.connectStart(fd, '127.0.0.1', (server.address() as net.AddressInfo).port);
      await n.connectWait(fd, 5000);
      const remote = await remoteP;
      server.close();
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

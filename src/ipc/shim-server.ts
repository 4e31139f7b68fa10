/**
 * The agent's end of the shim's channel (docs/shim-protocol.md): a Unix stream socket under $TMPDIR that the
 * LD_PRELOAD shim in each of this member's programs connects to. This file owns the framing only; what each
 * request means is the broker's (src/vnet/broker.ts).
 *
 * Frame: u32 len | u16 type | u16 flags | u32 request id | body, little-endian, len <= 4096 (header
 * included). A reply that carries a descriptor sends it as SCM_RIGHTS on its first byte (flag 0x1), through
 * the addon, with Node's own write queue empty so that the bytes keep their order.
 */
import net from 'node:net';
import { listenUnix, closeUnix } from './unix';
import os from 'node:os';
import type { Broker } from '../vnet/broker';
import { logger } from '../util/log';

const log = logger('shim-ipc');
const E = os.constants.errno;

export const MSG = { HELLO: 1, CONNECT: 2, CONNECT_RESULT: 3, LISTEN: 4, UNLISTEN: 5, ACCEPTED: 6, RESOLVE: 7, CONNECTING: 8 } as const;
/** Size of every message's header. */
export const HEADER = 12;
/** Largest message either way (docs/shim-protocol.md). */
const MAX_MESSAGE = 4096;
/** Longest a CONNECT_RESULT may ask the agent to wait (the shim's own IPC timeout is 2 s). */
const MAX_RESULT_WAIT_MS = 1_500;
/** Most addresses in one RESOLVE answer (fits in MAX_MESSAGE). */
const MAX_RESOLVE = 256;

export interface FdSender {
  sendFd(unixFd: number, fd: number, data: Buffer): number;
  close(fd: number): void;
  /** SO_PEERCRED of a connected Unix socket (absent: no check, in-memory tests). */
  peerCred?(unixFd: number): { pid: number; uid: number; gid: number };
}

/** An IPv4 address as 4 bytes in network order (the channel's address encoding). */
export function ipBytes(ip: string): Buffer {
  return Buffer.from(ip.split('.').map(Number));
}
export function ipAt(b: Buffer, off: number): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}
/** One message: header (len, type, flags, request id), then the body. */
export function frame(type: number, id: number, body: Buffer, flags = 0): Buffer {
  const h = Buffer.alloc(HEADER);
  h.writeUInt32LE(HEADER + body.length, 0);
  h.writeUInt16LE(type, 4);
  h.writeUInt16LE(flags, 6);
  h.writeUInt32LE(id, 8);
  return Buffer.concat([h, body]);
}
function errnoBody(e: number, size = 4): Buffer {
  const b = Buffer.alloc(size);
  b.writeInt32LE(e, 0);
  return b;
}

export class ShimServer {
  private server: net.Server | null = null;
  private readonly conns = new Set<net.Socket>();

  constructor(
    readonly path: string,
    private readonly broker: Broker,
    private readonly fds: FdSender,
  ) {}

  async start(): Promise<void> {
    this.server = await listenUnix(this.path, (s) => this.serve(s));
  }

  /** Only processes of this member's user may use the channel (the socket's directory is 0700 too). */
  private allowed(sock: net.Socket): boolean {
    const uid = process.getuid?.();
    if (!this.fds.peerCred || uid === undefined) return true;
    try {
      const cred = this.fds.peerCred((sock as unknown as { _handle: { fd: number } })._handle.fd);
      if (cred.uid === uid) return true;
      log.warn('refused a shim connection from another user', { uid: cred.uid, pid: cred.pid, expected: uid });
    } catch (e) {
      log.warn('refused a shim connection whose credentials cannot be read', { reason: (e as Error).message });
    }
    return false;
  }

  private serve(sock: net.Socket): void {
    if (!this.allowed(sock)) {
      sock.destroy();
      return;
    }
    this.conns.add(sock);
    let buf: Buffer = Buffer.alloc(0);
    sock.on('close', () => this.conns.delete(sock));
    sock.on('error', () => undefined);
    sock.on('data', (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      while (buf.length >= HEADER) {
        const len = buf.readUInt32LE(0);
        if (len < HEADER || len > MAX_MESSAGE) {
          log.warn('malformed message on the shim channel: closing it', { len });
          sock.destroy();
          return;
        }
        if (buf.length < len) break;
        const type = buf.readUInt16LE(4);
        const id = buf.readUInt32LE(8);
        const body = Buffer.from(buf.subarray(HEADER, len));
        buf = buf.subarray(len);
        this.handle(sock, type, id, body).catch((e: Error) => {
          log.warn('shim request failed', { type, reason: e.message });
          this.reply(sock, type, id, errnoBody(E.EIO));
        });
      }
    });
  }

  private reply(sock: net.Socket, type: number, id: number, body: Buffer, fd?: number): void {
    if (sock.destroyed) {
      if (fd !== undefined) this.fds.close(fd);
      return;
    }
    if (fd === undefined) {
      sock.write(frame(type, id, body));
      return;
    }
    const f = frame(type, id, body, 0x1);
    const send = () => {
      try {
        const ufd = (sock as unknown as { _handle: { fd: number } })._handle.fd;
        const sent = this.fds.sendFd(ufd, fd, f);
        if (sent < f.length) sock.write(f.subarray(sent));
      } catch (e) {
        log.warn('could not pass a descriptor to the shim', { reason: (e as Error).message });
        sock.destroy();
      } finally {
        this.fds.close(fd);
      }
    };
    if (sock.writableLength === 0) send();
    else sock.once('drain', send);
  }

  private async handle(sock: net.Socket, type: number, id: number, body: Buffer): Promise<void> {
    const need = (n: number) => {
      if (body.length < n) throw new Error(`request type ${type} is ${body.length} bytes, expected ${n}`);
    };
    switch (type) {
      case MSG.HELLO:
        need(4);
        this.broker.hello(body.readUInt32LE(0), body.subarray(4).toString('utf8'));
        return this.reply(sock, type, id, errnoBody(0));
      case MSG.CONNECT: {
        need(12);
        const a = await this.broker.connect(ipAt(body, 0), body.readUInt16LE(4), body.readUInt16LE(6));
        const r = Buffer.alloc(20);
        r.writeInt32LE(a.errno, 0);
        if (a.real) {
          ipBytes(a.real.ip).copy(r, 4);
          r.writeUInt16LE(a.real.port, 8);
          r.writeBigUInt64LE(a.connId ?? 0n, 12);
        }
        return this.reply(sock, type, id, r);
      }
      case MSG.CONNECTING: {
        // No reply: the shim went on with its connect.
        need(24);
        const real = { ip: ipAt(body, 8), port: body.readUInt16LE(12) };
        this.broker.connecting(ipAt(body, 0), body.readUInt16LE(4), body.readUInt16LE(6), real, body.readUInt16LE(14), body.readBigUInt64LE(16));
        return;
      }
      case MSG.CONNECT_RESULT: {
        need(12);
        const e = await this.broker.result(body.readBigUInt64LE(0), Math.min(body.readUInt32LE(8), MAX_RESULT_WAIT_MS));
        return this.reply(sock, type, id, errnoBody(e));
      }
      case MSG.LISTEN:
        need(2);
        this.broker.listen(body.readUInt16LE(0));
        return this.reply(sock, type, id, errnoBody(0));
      case MSG.UNLISTEN:
        need(2);
        this.broker.unlisten(body.readUInt16LE(0));
        return this.reply(sock, type, id, errnoBody(0));
      case MSG.ACCEPTED: {
        need(12);
        const a = await this.broker.accepted(body.readUInt16LE(0), { ip: ipAt(body, 4), port: body.readUInt16LE(8) });
        const r = Buffer.alloc(12);
        r.writeInt32LE(a.errno, 0);
        if (a.vaddr) {
          ipBytes(a.vaddr).copy(r, 4);
          r.writeUInt16LE(a.vport ?? 0, 8);
        }
        return this.reply(sock, type, id, r, a.fd);
      }
      case MSG.RESOLVE: {
        const addrs = this.broker.resolve(body.toString('utf8')).slice(0, MAX_RESOLVE);
        if (!addrs.length) return this.reply(sock, type, id, errnoBody(E.ENOENT));
        const r = Buffer.alloc(8 + 4 * addrs.length);
        r.writeUInt32LE(addrs.length, 4);
        addrs.forEach((a, i) => ipBytes(a).copy(r, 8 + 4 * i));
        return this.reply(sock, type, id, r);
      }
      default:
        log.warn('unknown request on the shim channel: closing it', { type });
        sock.destroy();
    }
  }

  async close(): Promise<void> {
    for (const s of this.conns) s.destroy();
    await closeUnix(this.server, this.path);
  }
}

/**
 * The one TypeScript codec of the shim's channel (docs/shim-protocol.md), mirroring native/shim/common/frame.h
 * and frame.c field by field: the agent's server (shim-server.ts) and the tests' fake agent both use it, and
 * test/unit/shim-codec.test.ts checks its numbers against frame.h's.
 *
 * Frame: u32 len | u16 type | u16 flags | u32 request id | body, little-endian, FRAME_HDR <= len <= FRAME_MAX.
 * IPv4 addresses in bodies are 4 bytes in network order. A reply that carries a descriptor has FRAME_FLAG_FD
 * and the descriptor as SCM_RIGHTS on its first byte.
 *
 * | type | request body | reply body |
 * |---|---|---|
 * | HELLO | u32 pid, name (<= 255 bytes) | i32 errno |
 * | CONNECT | vaddr[4], u16 vport, u16 local_port, u32 flags (CONNECT_FLAG_NONBLOCK) | i32 errno, real_ip[4], u16 real_port, u16 pad, u64 conn_id |
 * | CONNECT_RESULT | u64 conn_id, u32 wait_ms | i32 errno |
 * | LISTEN, UNLISTEN | u16 port, u16 pad | i32 errno |
 * | ACCEPTED | u16 listen_port, u16 pad, peer_ip[4], u16 peer_port, u16 local_port | i32 errno, vaddr[4], u16 vport, u16 pad (+ fd) |
 * | RESOLVE | name (1..1024 bytes) | i32 errno, u32 count, count x ip[4] |
 * | CONNECTING | vaddr[4], u16 vport, u16 local_port, real_ip[4], u16 real_port, u16 punch_port, u64 conn_id | none |
 */
import type net from 'node:net';
import type { Endpoint } from '../wire/messages';

export const FRAME_HDR = 12;
export const FRAME_MAX = 4096;
export const FRAME_FLAG_FD = 0x1;
export const CONNECT_FLAG_NONBLOCK = 0x1;
/** enum shim_msg of frame.h. */
export const MSG = { HELLO: 1, CONNECT: 2, CONNECT_RESULT: 3, LISTEN: 4, UNLISTEN: 5, ACCEPTED: 6, RESOLVE: 7, CONNECTING: 8, OUTCOME: 9 } as const;

export type ShimRequest =
  | { type: typeof MSG.HELLO; pid: number; name: string }
  | { type: typeof MSG.CONNECT; vaddr: string; vport: number; localPort: number; nonBlocking: boolean }
  | { type: typeof MSG.CONNECT_RESULT; connId: bigint; waitMs: number }
  | { type: typeof MSG.LISTEN | typeof MSG.UNLISTEN; port: number }
  | { type: typeof MSG.ACCEPTED; listenPort: number; peer: Endpoint; localPort: number }
  | { type: typeof MSG.RESOLVE; name: string }
  | { type: typeof MSG.CONNECTING; vaddr: string; vport: number; localPort: number; real: Endpoint; punchPort: number; connId: bigint };

/**
 * OUTCOME (agent -> shim, unasked, request id 0): u64 conn_id, i32 errno. The refusal of a connection the shim
 * announced with CONNECTING, sent as soon as the far side refused (before the handshake can complete), so the
 * shim answers SO_ERROR and a blocking connect without asking (native/shim/common/ipc.c, ipc_outcome).
 */
export const MSG_OUTCOME = MSG.OUTCOME;

export function outcomeNotice(connId: bigint, errno: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeBigUInt64LE(connId, 0);
  b.writeInt32LE(errno, 8);
  return encodeFrame(MSG_OUTCOME, 0, b);
}

export class ShimProtocolError extends Error {}

/** An IPv4 address as 4 bytes in network order. */
export function ipBytes(ip: string): Buffer {
  return Buffer.from(ip.split('.').map(Number));
}

export function ipAt(b: Buffer, off: number): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

/** One frame: header (len, type, flags, request id), then the body. */
export function encodeFrame(type: number, id: number, body: Buffer, flags = 0): Buffer {
  const h = Buffer.alloc(FRAME_HDR);
  h.writeUInt32LE(FRAME_HDR + body.length, 0);
  h.writeUInt16LE(type, 4);
  h.writeUInt16LE(flags, 6);
  h.writeUInt32LE(id, 8);
  return Buffer.concat([h, body]);
}

/** Cuts a byte stream into frames; `push` throws ShimProtocolError on a length outside [FRAME_HDR, FRAME_MAX]. */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);

  push(data: Buffer): Array<{ type: number; id: number; body: Buffer }> {
    this.buf = this.buf.length ? Buffer.concat([this.buf, data]) : data;
    const out: Array<{ type: number; id: number; body: Buffer }> = [];
    while (this.buf.length >= FRAME_HDR) {
      const len = this.buf.readUInt32LE(0);
      if (len < FRAME_HDR || len > FRAME_MAX) throw new ShimProtocolError(`frame length ${len} outside [${FRAME_HDR}, ${FRAME_MAX}]`);
      if (this.buf.length < len) break;
      out.push({ type: this.buf.readUInt16LE(4), id: this.buf.readUInt32LE(8), body: Buffer.from(this.buf.subarray(FRAME_HDR, len)) });
      this.buf = this.buf.subarray(len);
    }
    return out;
  }
}

/** Decodes a request body of `type`; throws ShimProtocolError when it is too short or the type is unknown. */
export function decodeRequest(type: number, body: Buffer): ShimRequest {
  const need = (n: number) => {
    if (body.length < n) throw new ShimProtocolError(`request type ${type} is ${body.length} bytes, expected ${n}`);
  };
  switch (type) {
    case MSG.HELLO:
      need(4);
      return { type, pid: body.readUInt32LE(0), name: body.subarray(4).toString('utf8') };
    case MSG.CONNECT:
      need(12);
      return { type, vaddr: ipAt(body, 0), vport: body.readUInt16LE(4), localPort: body.readUInt16LE(6), nonBlocking: (body.readUInt32LE(8) & CONNECT_FLAG_NONBLOCK) !== 0 };
    case MSG.CONNECT_RESULT:
      need(12);
      return { type, connId: body.readBigUInt64LE(0), waitMs: body.readUInt32LE(8) };
    case MSG.LISTEN:
    case MSG.UNLISTEN:
      need(2);
      return { type, port: body.readUInt16LE(0) };
    case MSG.ACCEPTED:
      need(12);
      return { type, listenPort: body.readUInt16LE(0), peer: { ip: ipAt(body, 4), port: body.readUInt16LE(8) }, localPort: body.readUInt16LE(10) };
    case MSG.RESOLVE:
      return { type, name: body.toString('utf8') };
    case MSG.CONNECTING:
      need(24);
      return {
        type,
        vaddr: ipAt(body, 0),
        vport: body.readUInt16LE(4),
        localPort: body.readUInt16LE(6),
        real: { ip: ipAt(body, 8), port: body.readUInt16LE(12) },
        punchPort: body.readUInt16LE(14),
        connId: body.readBigUInt64LE(16),
      };
  }
  throw new ShimProtocolError(`unknown request type ${type}`);
}

/** HELLO, CONNECT_RESULT, LISTEN, UNLISTEN replies, and any error reply. */
export function errnoReply(errno: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(errno, 0);
  return b;
}

export function connectReply(a: { errno: number; real?: Endpoint; connId?: bigint }): Buffer {
  const r = Buffer.alloc(20);
  r.writeInt32LE(a.errno, 0);
  if (a.real) {
    ipBytes(a.real.ip).copy(r, 4);
    r.writeUInt16LE(a.real.port, 8);
    r.writeBigUInt64LE(a.connId ?? 0n, 12);
  }
  return r;
}

export function acceptedReply(a: { errno: number; vaddr?: string; vport?: number }): Buffer {
  const r = Buffer.alloc(12);
  r.writeInt32LE(a.errno, 0);
  if (a.vaddr) {
    ipBytes(a.vaddr).copy(r, 4);
    r.writeUInt16LE(a.vport ?? 0, 8);
  }
  return r;
}

/** RESOLVE's answer; `enoent` is the errno for no address. */
export function resolveReply(addrs: string[], enoent: number): Buffer {
  if (!addrs.length) return errnoReply(enoent);
  const r = Buffer.alloc(8 + 4 * addrs.length);
  r.writeUInt32LE(addrs.length, 4);
  addrs.forEach((a, i) => ipBytes(a).copy(r, 8 + 4 * i));
  return r;
}

/**
 * Writes a reply frame that carries descriptor `fd` (SCM_RIGHTS on its first byte, through the addon's
 * sendFd), once Node's own write queue is empty so that the bytes keep their order; the rest of the frame
 * follows as ordinary bytes. `done` runs after the attempt (the caller closes its copy of fd there).
 */
export function writeWithFd(sock: net.Socket, f: Buffer, fd: number, sendFd: (unixFd: number, fd: number, data: Buffer) => number, done: (e?: Error) => void): void {
  const send = () => {
    try {
      const ufd = (sock as unknown as { _handle: { fd: number } })._handle.fd;
      const sent = sendFd(ufd, fd, f);
      if (sent < f.length) sock.write(f.subarray(sent));
      done();
    } catch (e) {
      done(e as Error);
    }
  };
  if (sock.writableLength === 0) send();
  else sock.once('drain', send);
}

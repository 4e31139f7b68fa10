/**
 * The agent's end of the shim's channel (docs/shim-protocol.md): a Unix stream socket under $TMPDIR that the
 * LD_PRELOAD shim in each of this member's programs connects to. This file owns the socket and the dispatch:
 * the frames and bodies are shim-codec.ts's (the one codec of this channel, mirroring
 * native/shim/common/frame.h), and what each request means is the broker's (src/vnet/broker.ts). Every
 * request is answered within the shim's bound for it (src/constants/ipc.ts).
 */
import net from 'node:net';
import { listenUnix, closeUnix } from './unix';
import os from 'node:os';
import type { Broker } from '../vnet/broker';
import { logger } from '../util/log';
import { CONNECT_BUDGET_MS, CONNECT_NONBLOCK_BUDGET_MS, MAX_PENDING_OUTCOMES, MAX_RESOLVE, MAX_RESULT_WAIT_MS } from '../constants';
import { acceptedReply, connectReply, decodeRequest, encodeFrame, errnoReply, FRAME_FLAG_FD, FrameReader, MSG, outcomeNotice, resolveReply, writeWithFd } from './shim-codec';

const log = logger('shim-ipc');
const E = os.constants.errno;

export interface FdSender {
  sendFd(unixFd: number, fd: number, data: Buffer): number;
  close(fd: number): void;
  /** SO_PEERCRED of a connected Unix socket (absent: no check, in-memory tests). */
  peerCred?(unixFd: number): { pid: number; uid: number; gid: number };
}

export class ShimServer {
  private server: net.Server | null = null;
  private readonly conns = new Set<net.Socket>();
  /** The channel each CONNECTING came on, by conn_id, until its outcome is known (bounded: MAX_PENDING_OUTCOMES). */
  private readonly outcomeTo = new Map<bigint, net.Socket>();

  constructor(
    readonly path: string,
    private readonly broker: Broker,
    private readonly fds: FdSender,
  ) {
    // A refusal is told to the shim unasked, at once (OUTCOME): its SO_ERROR then needs no round trip.
    broker.onOutcome = (connId, errno) => {
      const sock = this.outcomeTo.get(connId);
      if (!sock) return;
      this.outcomeTo.delete(connId);
      if (errno && !sock.destroyed) sock.write(outcomeNotice(connId, errno));
    };
  }

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
    const reader = new FrameReader();
    sock.on('close', () => this.conns.delete(sock));
    sock.on('error', () => undefined);
    sock.on('data', (d: Buffer) => {
      let frames;
      try {
        frames = reader.push(d);
      } catch (e) {
        log.warn('malformed message on the shim channel: closing it', { reason: (e as Error).message });
        sock.destroy();
        return;
      }
      for (const { type, id, body } of frames) {
        this.handle(sock, type, id, body).catch((e: Error) => {
          log.warn('shim request failed', { type, reason: e.message });
          this.reply(sock, type, id, errnoReply(E.EIO));
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
      sock.write(encodeFrame(type, id, body));
      return;
    }
    writeWithFd(sock, encodeFrame(type, id, body, FRAME_FLAG_FD), fd, (u, f, data) => this.fds.sendFd(u, f, data), (e) => {
      if (e) {
        log.warn('could not pass a descriptor to the shim', { reason: e.message });
        sock.destroy();
      }
      this.fds.close(fd);
    });
  }

  private async handle(sock: net.Socket, type: number, id: number, body: Buffer): Promise<void> {
    if (!Object.values(MSG).includes(type as never)) {
      log.warn('unknown request on the shim channel: closing it', { type });
      sock.destroy();
      return;
    }
    const q = decodeRequest(type, body);
    switch (q.type) {
      case MSG.HELLO:
        this.broker.hello(q.pid, q.name);
        return this.reply(sock, type, id, errnoReply(0));
      case MSG.CONNECT: {
        // Answered within the shim's bound for this connect (blocking or not: SHIM_CONNECT_TIMEOUT_MS, SHIM_IPC_TIMEOUT_MS).
        const a = await this.broker.connect(q.vaddr, q.vport, q.localPort, q.nonBlocking ? CONNECT_NONBLOCK_BUDGET_MS : CONNECT_BUDGET_MS);
        return this.reply(sock, type, id, connectReply(a));
      }
      case MSG.CONNECTING:
        // No reply: the shim went on with its connect; a refusal will be told (onOutcome).
        if (q.punchPort) {
          if (this.outcomeTo.size >= MAX_PENDING_OUTCOMES) this.outcomeTo.delete(this.outcomeTo.keys().next().value as bigint);
          this.outcomeTo.set(q.connId, sock);
        }
        return this.broker.connecting(q.vaddr, q.vport, q.localPort, q.real, q.punchPort, q.connId);
      case MSG.CONNECT_RESULT:
        return this.reply(sock, type, id, errnoReply(await this.broker.result(q.connId, Math.min(q.waitMs, MAX_RESULT_WAIT_MS))));
      case MSG.LISTEN:
        this.broker.listen(q.port);
        return this.reply(sock, type, id, errnoReply(0));
      case MSG.UNLISTEN:
        this.broker.unlisten(q.port);
        return this.reply(sock, type, id, errnoReply(0));
      case MSG.ACCEPTED: {
        const a = await this.broker.accepted(q.listenPort, q.peer);
        return this.reply(sock, type, id, acceptedReply(a), a.fd);
      }
      case MSG.RESOLVE:
        return this.reply(sock, type, id, resolveReply(this.broker.resolve(q.name).slice(0, MAX_RESOLVE), E.ENOENT));
    }
  }

  async close(): Promise<void> {
    for (const s of this.conns) s.destroy();
    await closeUnix(this.server, this.path);
  }
}

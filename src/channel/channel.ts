/**
 * An encrypted, authenticated message channel over any byte stream (a TCP socket, or an in-memory pair in
 * tests): the Noise handshake (src/crypto/noise.ts), then CBOR messages (src/wire/messages.ts) in frames
 * (src/wire/frame.ts) sealed with a per-direction counter.
 *
 * Transport frame body: `u64 LE counter | ChaCha20-Poly1305(message)`. The counter must be exactly the next
 * one: a lower counter is a replay, a higher one a gap; either, or a forged or malformed frame, closes this
 * one channel with a logged reason. Nothing is thrown at the caller: the channel emits `close`.
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { FrameReader, FrameError, encodeFrame } from '../wire/frame';
import { decodeMessage, encodeMessage, MessageError, type Message } from '../wire/messages';
import { Initiator, Responder, HandshakeError, rejectMessage, type CipherState, type HandshakeResult } from '../crypto/noise';
import type { KeyPair } from '../crypto/keys';
import { HANDSHAKE_TIMEOUT_MS, MAX_FRAME, MAX_HANDSHAKE_FRAME } from '../constants';
import { logger } from '../util/log';

const log = logger('channel');

export interface ChannelOptions {
  psk: Uint8Array;
  keys: KeyPair;
  /** Who the other side is, for logs (e.g. "198.18.0.5:41000"). */
  peer: string;
  handshakeTimeoutMs?: number;
}

/** Counters a channel keeps, for benchmarks and `boxer status`. */
export interface ChannelStats {
  sentMessages: number;
  sentBytes: number;
  recvMessages: number;
  recvBytes: number;
}

export interface ChannelEvents {
  message: [Message];
  close: [reason: string | null];
}

export class Channel extends EventEmitter<ChannelEvents> {
  readonly stats: ChannelStats = { sentMessages: 0, sentBytes: 0, recvMessages: 0, recvBytes: 0 };
  private closed = false;
  private readonly send: CipherState;
  private readonly recv: CipherState;
  readonly remoteStatic: Uint8Array;

  private constructor(
    private readonly stream: Duplex,
    private readonly reader: FrameReader,
    hs: HandshakeResult,
    readonly peer: string,
    private pending: Buffer[],
  ) {
    super();
    this.send = hs.send;
    this.recv = hs.recv;
    this.remoteStatic = hs.remoteStatic;
    reader.limit = MAX_FRAME;
    stream.pause();
    stream.on('close', () => this.teardown(null));
    stream.on('error', (e: NodeJS.ErrnoException) => {
      // A peer that went away resets its connections: normal when members leave or die, so not a warning.
      if (e.code === 'ECONNRESET' || e.code === 'EPIPE') {
        log.info('connection reset by the peer', { peer: this.peer });
        this.teardown(null);
      } else this.teardown(`connection error: ${e.message}`);
    });
  }

  /**
   * Starts delivering messages. Call it once the `message` and `close` listeners are attached: frames that
   * arrived with the end of the handshake are held until then, so none is lost.
   */
  start(): void {
    for (const f of this.pending.splice(0)) {
      if (this.closed) return;
      this.onFrame(f);
    }
    if (this.closed) return;
    this.stream.on('data', (chunk: Buffer) => this.onData(chunk));
    this.stream.resume();
  }

  /** Runs the initiator's side of the handshake on `stream`. Rejects with HandshakeError or Error. */
  static initiate(stream: Duplex, opts: ChannelOptions): Promise<Channel> {
    const hs = new Initiator(opts.psk, opts.keys);
    return runHandshake(stream, opts, 1, (reader, write, next, queue) => {
      write(hs.message1());
      return next().then((m2) => {
        const { message3, result } = hs.message2(m2, new Uint8Array(0));
        write(message3);
        return new Channel(stream, reader, result, opts.peer, queue);
      });
    });
  }

  /** Runs the responder's side; on a wrong secret, sends a refusal the initiator can report, then closes. */
  static respond(stream: Duplex, opts: ChannelOptions): Promise<Channel> {
    const hs = new Responder(opts.psk, opts.keys);
    return runHandshake(stream, opts, 2, (reader, write, next, queue) =>
      next().then((m1) => {
        let m2: Uint8Array;
        try {
          m2 = hs.message1(m1, new Uint8Array(0));
        } catch (e) {
          if (e instanceof HandshakeError) write(rejectMessage(e.reason));
          throw e;
        }
        write(m2);
        return next().then((m3) => new Channel(stream, reader, hs.message3(m3), opts.peer, queue));
      }),
    );
  }

  get isClosed(): boolean {
    return this.closed;
  }

  sendMessage(m: Message): boolean {
    if (this.closed) return false;
    return this.sendEncoded(encodeMessage(m));
  }

  /** Sends a message already encoded (encodeMessage): a broadcast encodes once and seals per channel. */
  sendEncoded(plain: Uint8Array): boolean {
    if (this.closed) return false;
    const counter = this.send.counter;
    const sealed = this.send.seal(plain);
    const body = Buffer.allocUnsafe(8 + sealed.length);
    body.writeBigUInt64LE(BigInt(counter), 0);
    body.set(sealed, 8);
    const frame = encodeFrame(body);
    this.stats.sentMessages++;
    this.stats.sentBytes += frame.length;
    return this.stream.write(frame);
  }

  /** Closes the channel; `reason` (when given) is logged as a warning. */
  close(reason: string | null = null): void {
    this.teardown(reason);
  }

  private teardown(reason: string | null): void {
    if (this.closed) return;
    this.closed = true;
    if (reason) log.warn('closing connection', { peer: this.peer, reason });
    this.stream.destroy();
    this.emit('close', reason);
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    this.stats.recvBytes += chunk.length;
    let frames: Buffer[];
    try {
      frames = this.reader.push(chunk);
    } catch (e) {
      return this.teardown(`bad frame: ${(e as FrameError).message}`);
    }
    for (const f of frames) {
      if (this.closed) return;
      this.onFrame(f);
    }
  }

  private onFrame(f: Buffer): void {
    if (f.length < 8 + 16) return this.teardown(`malformed frame: ${f.length} bytes is shorter than counter and tag`);
    const counter = f.readBigUInt64LE(0);
    const expected = BigInt(this.recv.counter);
    if (counter < expected) return this.teardown(`replayed frame: counter ${counter}, expected ${expected}`);
    if (counter > expected) return this.teardown(`frame out of sequence: counter ${counter}, expected ${expected}`);
    let plain: Uint8Array;
    try {
      plain = this.recv.openAt(Number(counter), f.subarray(8));
    } catch {
      return this.teardown('frame failed authentication (corrupted or forged)');
    }
    let m: Message;
    try {
      m = decodeMessage(plain);
    } catch (e) {
      return this.teardown(`malformed message: ${(e as MessageError).message}`);
    }
    this.stats.recvMessages++;
    this.emit('message', m);
  }
}

/** One side's handshake steps; `queue` holds the frames received after the last handshake message. */
type Step = (
  reader: FrameReader,
  write: (b: Uint8Array) => void,
  next: () => Promise<Uint8Array>,
  queue: Buffer[],
) => Promise<Channel>;

/**
 * The handshake's incoming frames, read from the stream and handed out by next() in order (or the failure:
 * a malformed frame, the connection closed or failed). `framesIn`: how many handshake frames this side
 * receives; frames after them may be transport-sized.
 */
class HandshakeInbox {
  readonly reader = new FrameReader(MAX_HANDSHAKE_FRAME);
  /** Frames received and not yet taken (after the handshake: the first transport frames). */
  readonly queue: Buffer[] = [];
  private waiter: { resolve: (b: Buffer) => void; reject: (e: Error) => void } | null = null;
  private failure: Error | null = null;
  private received = 0;

  constructor(
    private readonly stream: Duplex,
    private readonly framesIn: number,
  ) {
    stream.on('data', this.onData);
    stream.on('close', this.onClose);
    stream.on('error', this.onError);
  }

  /** The next handshake frame. */
  readonly next = (): Promise<Uint8Array> =>
    new Promise<Uint8Array>((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      const f = this.queue.shift();
      if (f) return resolve(f);
      this.waiter = { resolve, reject };
    });

  /** Stops listening to the stream (the channel takes it over, or it is closed). */
  detach(): void {
    this.stream.off('data', this.onData);
    this.stream.off('close', this.onClose);
    this.stream.off('error', this.onError);
  }

  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    if (this.waiter) this.waiter.reject(e);
  }

  private readonly onData = (chunk: Buffer) => {
    try {
      this.reader.append(chunk);
      for (let f = this.reader.next(); f; f = this.reader.next()) {
        if (++this.received === this.framesIn) this.reader.limit = MAX_FRAME;
        if (this.waiter) {
          const w = this.waiter;
          this.waiter = null;
          w.resolve(f);
        } else this.queue.push(f);
      }
    } catch (e) {
      this.fail(new HandshakeError('malformed', `bad handshake frame: ${(e as Error).message}`));
    }
  };
  private readonly onClose = () => this.fail(new Error('connection closed during the handshake'));
  private readonly onError = (e: Error) => this.fail(new Error(`connection failed during the handshake: ${e.message}`));
}

/** Runs one side's handshake steps on the stream within the handshake timeout. */
function runHandshake(stream: Duplex, opts: ChannelOptions, framesIn: number, step: Step): Promise<Channel> {
  const inbox = new HandshakeInbox(stream, framesIn);
  const write = (b: Uint8Array) => {
    stream.write(encodeFrame(b));
  };
  const timeoutMs = opts.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`handshake with ${opts.peer} did not complete within ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([step(inbox.reader, write, inbox.next, inbox.queue), timeout])
    .catch((e: Error) => {
      // Let a refusal reach the initiator before the connection goes away.
      if (e instanceof HandshakeError) stream.end();
      else stream.destroy();
      throw e;
    })
    .finally(() => {
      clearTimeout(timer);
      inbox.detach();
    });
}

/**
 * A relayed byte stream: the two ends of a peer link run an ordinary Channel (Noise handshake, sealed frames)
 * over this Duplex, whose bytes travel as `relay` messages through a public member (the seed or an `open`
 * member). The relay sees only ciphertext: the link stays end-to-end encrypted and authenticated.
 */
import { Duplex } from 'node:stream';
import { RELAY_CHUNK } from '../constants';

export type RelaySend = (data: Uint8Array, end: boolean) => boolean;

export class RelayStream extends Duplex {
  private ended = false;

  constructor(
    readonly peer: number,
    readonly sid: number,
    private readonly send: RelaySend,
    private readonly onGone: () => void,
  ) {
    super({ allowHalfOpen: false });
  }

  override _read(): void {}

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    for (let off = 0; off < chunk.length; off += RELAY_CHUNK) {
      if (!this.send(chunk.subarray(off, off + RELAY_CHUNK), false)) return cb(new Error('the relay is gone'));
    }
    cb();
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.finish();
    cb();
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    this.finish();
    this.onGone();
    cb(err);
  }

  /** Bytes (and possibly the end) from the far side. */
  deliver(data: Uint8Array, end: boolean): void {
    if (this.destroyed) return;
    if (data.length) this.push(Buffer.from(data));
    if (end) {
      this.ended = true;
      this.destroy();
    }
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    this.send(new Uint8Array(0), true);
  }
}

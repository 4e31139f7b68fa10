/**
 * Length-prefixed frames on a byte stream.
 *
 * ```
 * +----------------+------------------------+
 * | u32 BE length  | body (length bytes)    |
 * +----------------+------------------------+
 * ```
 * The length counts the body only. A length above the reader's limit is a protocol error: the connection is
 * closed before the body is buffered, so an unauthenticated peer cannot make us allocate more than the limit.
 */

export class FrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FrameError';
  }
}

export function encodeFrame(body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  out.set(body, 4);
  return out;
}

/** Accumulates stream chunks and yields complete frames. The limit can be raised once the peer is trusted. */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(public limit: number) {}

  /** Feeds bytes; returns every frame now complete. Throws FrameError on an oversized frame. */
  push(chunk: Buffer): Buffer[] {
    this.append(chunk);
    const frames: Buffer[] = [];
    for (let f = this.next(); f; f = this.next()) frames.push(f);
    return frames;
  }

  append(chunk: Buffer): void {
    if (!chunk.length) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** The next complete frame, or null. Throws FrameError when the next frame is over the limit. */
  next(): Buffer | null {
    if (this.buffered < 4) return null;
    const len = this.peek(4).readUInt32BE(0);
    if (len > this.limit) throw new FrameError(`frame of ${len} bytes exceeds the limit of ${this.limit} bytes`);
    if (this.buffered < 4 + len) return null;
    return this.take(4 + len).subarray(4);
  }

  /** Bytes received but not yet part of a complete frame. */
  get pending(): number {
    return this.buffered;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0].length < n) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0].subarray(0, n);
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.buffered = rest.length;
    return out;
  }
}

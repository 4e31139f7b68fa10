/**
 * A file that shows the latest of something that changes often (the member file, the route table): rewritten
 * atomically (temporary file + rename, as writeFileAtomic), outside the turn that changed it, at most once per
 * FILE_WRITE_INTERVAL_MS. The write itself is synchronous by default: at 1000 members (a 46 kB route table)
 * it costs ~0.15 ms of CPU and of the event loop, where fs.promises' three thread-pool round trips
 * (open, write, close; then rename) cost ~0.8 ms of CPU per file (measured: bench/member-change.ts). A change after a quiet spell is written at once (the end of the current turn, so
 * that the changes of one turn make one write); changes in a burst make one write at the end of the interval,
 * of the state then: the text is rendered when written, not on every change. A failed write (ENOSPC, EDQUOT)
 * leaves the last good file, is reported once per cause, and is retried after FILE_RETRY_MS.
 */
import { FILE_WRITE_INTERVAL_MS, MEMBER_FILE_RETRY_MS } from '../constants';
import { writeFileAtomic } from './paths';

export type AsyncWrite = (file: string, text: string) => Promise<void> | void;



export interface LatestFileOptions {
  /** How to write (default writeFileAtomic; tests: a failing disk). It may return a promise. */
  write?: AsyncWrite;
  /** Called with the cause of a failed write (an errno code), and null once a write succeeds after one. */
  onError?: (cause: string | null) => void;
  intervalMs?: number;
  retryMs?: number;
}

export class LatestFile {
  private last = '';
  private lastAt = -Infinity;
  private dirty = false;
  private writing: Promise<void> | null = null;
  private timeout: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private failed: string | null = null;
  private closed = false;
  private readonly write: AsyncWrite;
  private readonly intervalMs: number;
  private readonly retryMs: number;

  constructor(
    readonly file: string,
    private readonly render: () => string,
    private readonly opts: LatestFileOptions = {},
  ) {
    this.write = opts.write ?? ((file, text) => writeFileAtomic(file, text));
    this.intervalMs = opts.intervalMs ?? FILE_WRITE_INTERVAL_MS;
    this.retryMs = opts.retryMs ?? MEMBER_FILE_RETRY_MS;
  }

  /** The cause of the last failed write, or null when the file is current. */
  get error(): string | null {
    return this.failed;
  }

  /** Something changed: the file is rewritten soon (see the file's comment). */
  changed(): void {
    if (this.closed) return;
    this.dirty = true;
    this.schedule();
  }

  /** Writes now if anything changed (or the file was never written); resolves once written (or failed: see `error`). */
  async flush(): Promise<void> {
    if (this.writing) await this.writing;
    if (this.dirty || this.lastAt === -Infinity) await this.writeNow();
  }

  /**
   * Writes now, synchronously (writeFileAtomic), where a reader must see the file before we answer it (a
   * service address just handed out to a program); throws on failure, the file then left as it was.
   */
  writeSync(): void {
    this.cancel();
    this.dirty = false;
    const text = this.render();
    this.lastAt = performance.now();
    if (text === this.last && !this.failed && !this.writing) return;
    if (this.writing) this.dirty = true; // written again once the one in flight ends
    try {
      writeFileAtomic(this.file, text);
    } catch (e) {
      this.dirty = true;
      this.schedule();
      throw e;
    }
    this.last = text;
    if (this.failed) this.opts.onError?.(null);
    this.failed = null;
    this.schedule(); // a write in flight may have taken an older state
  }

  private schedule(): void {
    if (this.closed || this.timeout || this.immediate || this.writing || !this.dirty) return;
    const wait = this.failed ? this.retryMs : this.lastAt + this.intervalMs - performance.now();
    if (wait <= 0) this.immediate = setImmediate(() => void this.writeNow());
    else {
      this.timeout = setTimeout(() => void this.writeNow(), wait);
      this.timeout.unref();
    }
  }

  private cancel(): void {
    if (this.timeout) clearTimeout(this.timeout);
    if (this.immediate) clearImmediate(this.immediate);
    this.timeout = null;
    this.immediate = null;
  }

  private writeNow(): Promise<void> {
    this.cancel();
    this.dirty = false;
    const text = this.render();
    this.lastAt = performance.now();
    if (text === this.last && !this.failed) return Promise.resolve();
    const p = (async () => {
      try {
        await this.write(this.file, text);
        this.last = text;
        if (this.failed) this.opts.onError?.(null);
        this.failed = null;
      } catch (e) {
        const cause = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
        if (cause !== this.failed) this.opts.onError?.(cause);
        this.failed = cause;
        this.dirty = true; // retried after retryMs, with the state then
      }
    })();
    this.writing = p.finally(() => {
      this.writing = null;
      this.schedule();
    });
    return this.writing;
  }

  /** No more writes (the last one in flight still ends). */
  close(): void {
    this.closed = true;
    this.cancel();
  }
}

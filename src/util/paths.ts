/**
 * Where Boxer writes: only under $TMPDIR (default /tmp), the one writable place in a function. Everything goes
 * into a per-user directory `$TMPDIR/boxer-UID` (mode 0700), named so that several agents on one host (tests,
 * several functions per host) never collide: each file carries the process id and an instance number.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BoxerError } from './errors';

export function tmpDir(): string {
  return process.env.TMPDIR || os.tmpdir() || '/tmp';
}

export function runtimeDir(): string {
  const uid = typeof process.getuid === 'function' ? process.getuid() : 0;
  const dir = path.join(tmpDir(), `boxer-${uid}`);
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    throw new BoxerError('USAGE', `cannot create ${dir} (${code}): Boxer writes only under $TMPDIR (${tmpDir()}); set TMPDIR to a directory this user can write`);
  }
  return dir;
}

let instance = 0;
/** A file name unique to this process and call: `PREFIX-PID-N.EXT`. */
export function uniquePath(prefix: string, ext: string): string {
  return path.join(runtimeDir(), `${prefix}-${process.pid}-${instance++}${ext}`);
}

/** Writes a file atomically (temporary file + rename), so readers never see half of it; throws on failure. */
export function writeFileAtomic(file: string, data: string, mode = 0o644): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(tmp, data, { mode });
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true }); // a half-written temporary file (disk full) is not left behind
    throw e;
  }
}

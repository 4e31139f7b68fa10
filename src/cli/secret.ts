/**
 * Where the network secret comes from: --secret-file, else $BOXER_SECRET; a seed given neither generates
 * one and writes it to a file only its user can read.
 */
import fs from 'node:fs';
import path from 'node:path';
import { checkSecret, generateSecret } from '../crypto/keys';
import { BoxerError } from '../util/errors';
import { runtimeDir, writeFileAtomic } from '../util/paths';
import { logger } from '../util/log';
import { native } from '../util/native';

const log = logger('secret');

/**
 * Keeps the secret from the member's program (same user): the process becomes non-dumpable, so /proc/PID/environ,
 * mem and ptrace are closed to it, and $BOXER_SECRET is overwritten in our own environment block (never passed on).
 */
export function protectSecret(): void {
  try {
    const n = native();
    if (!n.hideProcess()) log.warn('could not make the agent non-dumpable: the program may read its memory');
    if (process.env.BOXER_SECRET !== undefined) n.scrubEnv('BOXER_SECRET');
  } catch (e) {
    delete process.env.BOXER_SECRET;
    log.warn('cannot hide the secret from other processes of this user (native addon unavailable)', { reason: (e as Error).message });
  }
}

export function readSecret(secretFile: string | undefined): string {
  const secret = readSecretFrom(secretFile);
  protectSecret();
  return secret;
}

function readSecretFrom(secretFile: string | undefined): string {
  if (secretFile) {
    let text: string;
    try {
      checkPrivate(secretFile);
      text = fs.readFileSync(secretFile, 'utf8');
    } catch (e) {
      if (e instanceof BoxerError) throw e;
      throw new BoxerError('USAGE', `cannot read the secret file ${secretFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    return checkSecret(text, secretFile);
  }
  return checkSecret(process.env.BOXER_SECRET, '$BOXER_SECRET');
}

/**
 * Refuses a secret file that other users can read or change (as ssh refuses such a key): whoever reads the
 * secret can join the network. Only regular files are checked (a pipe such as /dev/stdin is private).
 */
function checkPrivate(file: string): void {
  const st = fs.statSync(file);
  if (!st.isFile() || (st.mode & 0o077) === 0) return;
  const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
  const how = st.mode & 0o044 ? 'readable by other users' : 'writable by other users';
  throw new BoxerError('USAGE', `the secret file ${file} is ${how} (mode ${mode}): anyone on this host could join the network. Run: chmod 600 ${file}`);
}

/** For the seed: the given secret, or a new one written to a 0600 file (returned so it can be printed). */
export function seedSecret(secretFile: string | undefined, port: number): { secret: string; file: string | null; generated: boolean } {
  if (secretFile || process.env.BOXER_SECRET) return { secret: readSecret(secretFile), file: secretFile ?? null, generated: false };
  const secret = generateSecret();
  protectSecret();
  const file = path.join(runtimeDir(), `secret-${port}-${process.pid}`);
  writeFileAtomic(file, secret + '\n', 0o600);
  return { secret, file, generated: true };
}

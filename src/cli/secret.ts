/**
 * Where the network secret comes from: --secret-file, else $BOXER_SECRET; a seed given neither generates
 * one and writes it to a file only its user can read.
 */
import fs from 'node:fs';
import path from 'node:path';
import { checkSecret, generateSecret } from '../crypto/keys';
import { BoxerError } from '../util/errors';
import { runtimeDir, writeFileAtomic } from '../util/paths';

export function readSecret(secretFile: string | undefined): string {
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
  const file = path.join(runtimeDir(), `secret-${port}-${process.pid}`);
  writeFileAtomic(file, secret + '\n', 0o600);
  return { secret, file, generated: true };
}

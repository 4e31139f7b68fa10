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
      text = fs.readFileSync(secretFile, 'utf8');
    } catch (e) {
      throw new BoxerError('USAGE', `cannot read the secret file ${secretFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    return checkSecret(text, secretFile);
  }
  return checkSecret(process.env.BOXER_SECRET, '$BOXER_SECRET');
}

/** For the seed: the given secret, or a new one written to a 0600 file (returned so it can be printed). */
export function seedSecret(secretFile: string | undefined, port: number): { secret: string; file: string | null; generated: boolean } {
  if (secretFile || process.env.BOXER_SECRET) return { secret: readSecret(secretFile), file: secretFile ?? null, generated: false };
  const secret = generateSecret();
  const file = path.join(runtimeDir(), `secret-${port}-${process.pid}`);
  writeFileAtomic(file, secret + '\n', 0o600);
  return { secret, file, generated: true };
}

/**
 * Keys: the network key derived from the shared secret, and each node's static X25519 key pair.
 *
 * The network key is keyed BLAKE2b-256 of a fixed label under the secret: fast and memory-light (a function
 * has little memory, so no memory-hard KDF). It is only ever used as the Noise pre-shared key, never sent.
 */
import { sodium } from './sodium';
import { MIN_SECRET_LENGTH } from '../constants';
import { BoxerError } from '../util/errors';

const NETWORK_KEY_LABEL = 'boxer network key v1';

export interface KeyPair {
  publicKey: Uint8Array;
  privateKey: Uint8Array;
}

export function checkSecret(secret: string | undefined, source: string): string {
  if (secret === undefined || secret === '') {
    throw new BoxerError(
      'USAGE',
      'no network secret: give --secret-file FILE or set BOXER_SECRET (the seed prints how to join when it starts)',
    );
  }
  const s = secret.trim();
  if (s.length < MIN_SECRET_LENGTH) {
    throw new BoxerError('USAGE', `the network secret from ${source} is ${s.length} characters; it needs at least ${MIN_SECRET_LENGTH}`);
  }
  return s;
}

/** The 32-byte pre-shared key of the network: keyed BLAKE2b of a label under the secret. */
export function deriveNetworkKey(secret: string): Uint8Array {
  const s = sodium();
  const key = s.crypto_generichash(32, s.from_string(secret));
  return s.crypto_generichash(32, s.from_string(NETWORK_KEY_LABEL), key);
}

export function generateKeyPair(): KeyPair {
  const kp = sodium().crypto_box_keypair();
  return { publicKey: kp.publicKey, privateKey: kp.privateKey };
}

/** A strong random secret for a seed started without one: 32 random bytes, base64url. */
export function generateSecret(): string {
  const s = sodium();
  return s.to_base64(s.randombytes_buf(32), s.base64_variants.URLSAFE_NO_PADDING);
}

/** A short, stable fingerprint of a public key for logs and `boxer status`. */
export function fingerprint(publicKey: Uint8Array): string {
  return Buffer.from(publicKey.subarray(0, 6)).toString('hex');
}

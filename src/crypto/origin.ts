/**
 * Messages that cross other members on their way (`fwd` signalling carried by the seed or a member's home)
 * are sealed by their origin for their destination: crypto_box (X25519 + XSalsa20-Poly1305) under the two
 * members' static keys, the ones the handshake authenticated and the seed lists. A carrier can drop such a
 * message but cannot forge its origin, alter it, or read it.
 *
 *   sealed = nonce (24) | crypto_box_easy(message, nonce, destination.pub, origin.priv)
 */
import { sodium } from './sodium';
import type { KeyPair } from './keys';

const NONCE = 24;

export function sealFor(message: Uint8Array, to: Uint8Array, from: KeyPair): Uint8Array {
  const s = sodium();
  const nonce = s.randombytes_buf(NONCE);
  const box = s.crypto_box_easy(message, nonce, to, from.privateKey);
  const out = new Uint8Array(NONCE + box.length);
  out.set(nonce);
  out.set(box, NONCE);
  return out;
}

/** The message sealed by the holder of `from`'s key for us, or null when it was not (forged or altered). */
export function openFrom(sealed: Uint8Array, from: Uint8Array, to: KeyPair): Uint8Array | null {
  if (sealed.length < NONCE + 16 || from.length !== 32) return null;
  try {
    return sodium().crypto_box_open_easy(sealed.subarray(NONCE), sealed.subarray(0, NONCE), from, to.privateKey);
  } catch {
    return null;
  }
}

/**
 * The control-plane handshake: Noise XXpsk0 over X25519, ChaCha20-Poly1305 (IETF) and BLAKE2b-256.
 *
 * ```
 *   XXpsk0:
 *     -> psk, e            message 1: 0x01 'B' 'X' 'R' version | e.pub(32) | tag(16)
 *     <- e, ee, s, es      message 2: 0x02 | e.pub(32) | enc(s.pub)(48) | enc(payload)
 *     -> s, se             message 3: 0x03 | enc(s.pub)(48) | enc(payload)
 *   a refusal instead of message 2: 0xFF | reason (utf-8: "wrong-secret", "version")
 * ```
 * The pre-shared key is the network key (src/crypto/keys.ts), mixed in before anything else, so a peer that
 * does not know the secret fails on message 1, before the responder reveals anything (its static key is only
 * sent encrypted in message 2). The clear prologue ('BXR' + version) is hashed into the transcript.
 *
 * Deviations from the Noise spec, to keep to libsodium's primitives: HASH is BLAKE2b-256 and HKDF uses keyed
 * BLAKE2b in place of HMAC (both PRFs). The result is a pair of transport keys, one per direction.
 * This module is pure: no I/O, no timers; src/channel/channel.ts drives it over a stream.
 */
import { sodium } from './sodium';
import { generateKeyPair, type KeyPair } from './keys';
import { PROTOCOL_VERSION, HANDSHAKE_MAGIC } from '../constants';

const PROTOCOL_NAME = 'Noise_XXpsk0_25519_ChaChaPoly_BLAKE2b256_boxer';
const DHLEN = 32;
const TAGLEN = 16;

export const MSG1 = 0x01;
export const MSG2 = 0x02;
export const MSG3 = 0x03;
export const REJECT = 0xff;

export type RejectReason = 'wrong-secret' | 'version' | 'malformed';

export class HandshakeError extends Error {
  constructor(
    readonly reason: RejectReason,
    message: string,
  ) {
    super(message);
    this.name = 'HandshakeError';
  }
}

function nonce(n: number): Uint8Array {
  const out = new Uint8Array(12);
  new DataView(out.buffer).setBigUint64(4, BigInt(n), true);
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const len = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(len);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/** Transport cipher for one direction: AEAD with an implicit, strictly increasing counter as nonce. */
export class CipherState {
  private n = 0;
  constructor(private readonly k: Uint8Array) {}

  /** Counter the next seal will use. */
  get counter(): number {
    return this.n;
  }

  seal(plaintext: Uint8Array, ad: Uint8Array | null = null): Uint8Array {
    const c = sodium().crypto_aead_chacha20poly1305_ietf_encrypt(plaintext, ad, null, nonce(this.n), this.k);
    this.n++;
    return c;
  }

  /** Opens with an explicit counter (which the caller has checked is the expected one). Throws on forgery. */
  openAt(n: number, ciphertext: Uint8Array, ad: Uint8Array | null = null): Uint8Array {
    const p = sodium().crypto_aead_chacha20poly1305_ietf_decrypt(null, ciphertext, ad, nonce(n), this.k);
    this.n = n + 1;
    return p;
  }
}

class SymmetricState {
  h: Uint8Array;
  ck: Uint8Array;
  k: Uint8Array | null = null;
  n = 0;

  constructor() {
    const s = sodium();
    this.h = s.crypto_generichash(32, s.from_string(PROTOCOL_NAME));
    this.ck = this.h;
  }

  private hkdf(ikm: Uint8Array, outputs: 2 | 3): Uint8Array[] {
    const s = sodium();
    const temp = s.crypto_generichash(32, ikm, this.ck);
    const o1 = s.crypto_generichash(32, Uint8Array.of(1), temp);
    const o2 = s.crypto_generichash(32, concat(o1, Uint8Array.of(2)), temp);
    if (outputs === 2) return [o1, o2];
    return [o1, o2, s.crypto_generichash(32, concat(o2, Uint8Array.of(3)), temp)];
  }

  mixHash(data: Uint8Array): void {
    this.h = sodium().crypto_generichash(32, concat(this.h, data));
  }
  mixKey(ikm: Uint8Array): void {
    const [ck, k] = this.hkdf(ikm, 2);
    this.ck = ck;
    this.k = k;
    this.n = 0;
  }
  mixKeyAndHash(ikm: Uint8Array): void {
    const [ck, th, k] = this.hkdf(ikm, 3);
    this.ck = ck;
    this.mixHash(th);
    this.k = k;
    this.n = 0;
  }
  encryptAndHash(p: Uint8Array): Uint8Array {
    const c = this.k ? sodium().crypto_aead_chacha20poly1305_ietf_encrypt(p, this.h, null, nonce(this.n++), this.k) : p;
    this.mixHash(c);
    return c;
  }
  decryptAndHash(c: Uint8Array): Uint8Array {
    const p = this.k ? sodium().crypto_aead_chacha20poly1305_ietf_decrypt(null, c, this.h, nonce(this.n++), this.k) : c;
    this.mixHash(c);
    return p;
  }
  split(): [CipherState, CipherState] {
    const [k1, k2] = this.hkdf(new Uint8Array(0), 2);
    return [new CipherState(k1), new CipherState(k2)];
  }
}

export interface HandshakeResult {
  send: CipherState;
  recv: CipherState;
  /** The peer's static public key, authenticated by the handshake. */
  remoteStatic: Uint8Array;
  /** The peer's payload from message 2 (initiator) or message 3 (responder). */
  remotePayload: Uint8Array;
}

function prologue(): Uint8Array {
  return concat(sodium().from_string(HANDSHAKE_MAGIC), Uint8Array.of(PROTOCOL_VERSION));
}

function dh(priv: Uint8Array, pub: Uint8Array): Uint8Array {
  return sodium().crypto_scalarmult(priv, pub);
}

/** What both sides of a handshake hold: the transcript, a fresh ephemeral key, the peer's ephemeral key. */
abstract class HandshakeParty {
  protected ss = new SymmetricState();
  protected e: KeyPair = generateKeyPair();
  protected re: Uint8Array | null = null;

  constructor(
    protected readonly psk: Uint8Array,
    protected readonly s: KeyPair,
  ) {}
}

/** The initiator's side: message 1 out, message 2 in, message 3 out. */
export class Initiator extends HandshakeParty {

  message1(): Uint8Array {
    const ss = this.ss;
    const pro = prologue();
    ss.mixHash(pro);
    ss.mixKeyAndHash(this.psk);
    ss.mixHash(this.e.publicKey);
    ss.mixKey(this.e.publicKey);
    const tag = ss.encryptAndHash(new Uint8Array(0));
    return concat(Uint8Array.of(MSG1), pro, this.e.publicKey, tag);
  }

  /** Reads message 2 (or a refusal); returns message 3 and the session. Throws HandshakeError. */
  message2(msg: Uint8Array, payload3: Uint8Array): { message3: Uint8Array; result: HandshakeResult } {
    if (msg[0] === REJECT) {
      const reason = Buffer.from(msg.subarray(1)).toString('utf8');
      throw new HandshakeError(
        reason === 'version' ? 'version' : reason === 'malformed' ? 'malformed' : 'wrong-secret',
        `refused by the peer: ${reason}`,
      );
    }
    if (msg[0] !== MSG2 || msg.length < 1 + DHLEN + DHLEN + TAGLEN + TAGLEN) {
      throw new HandshakeError('malformed', 'malformed handshake message 2');
    }
    const ss = this.ss;
    let off = 1;
    const re = msg.subarray(off, (off += DHLEN));
    this.re = re;
    ss.mixHash(re);
    ss.mixKey(re);
    ss.mixKey(dh(this.e.privateKey, re));
    let rs: Uint8Array;
    let payload2: Uint8Array;
    try {
      rs = ss.decryptAndHash(msg.subarray(off, (off += DHLEN + TAGLEN)));
      ss.mixKey(dh(this.e.privateKey, rs));
      payload2 = ss.decryptAndHash(msg.subarray(off));
    } catch {
      throw new HandshakeError('wrong-secret', 'handshake message 2 did not authenticate: the peer does not know the network secret');
    }
    const encS = ss.encryptAndHash(this.s.publicKey);
    ss.mixKey(dh(this.s.privateKey, this.re));
    const encP = ss.encryptAndHash(payload3);
    const [send, recv] = ss.split();
    return {
      message3: concat(Uint8Array.of(MSG3), encS, encP),
      result: { send, recv, remoteStatic: rs, remotePayload: payload2 },
    };
  }
}

/** The responder's side: message 1 in, message 2 out, message 3 in. */
export class Responder extends HandshakeParty {

  /** Reads message 1; returns message 2. Throws HandshakeError (send `reject(err.reason)` then close). */
  message1(msg: Uint8Array, payload2: Uint8Array): Uint8Array {
    const pro = prologue();
    if (msg.length < 1 + pro.length || msg[0] !== MSG1 || Buffer.compare(Buffer.from(msg.subarray(1, 4)), Buffer.from(pro.subarray(0, 3))) !== 0) {
      throw new HandshakeError('malformed', 'not a Boxer handshake');
    }
    if (msg[4] !== PROTOCOL_VERSION) {
      throw new HandshakeError('version', `peer speaks protocol version ${msg[4]}, this node speaks ${PROTOCOL_VERSION}`);
    }
    if (msg.length !== 1 + pro.length + DHLEN + TAGLEN) throw new HandshakeError('malformed', 'malformed handshake message 1');
    const ss = this.ss;
    ss.mixHash(pro);
    ss.mixKeyAndHash(this.psk);
    const re = msg.subarray(1 + pro.length, 1 + pro.length + DHLEN);
    this.re = re;
    ss.mixHash(re);
    ss.mixKey(re);
    try {
      ss.decryptAndHash(msg.subarray(1 + pro.length + DHLEN));
    } catch {
      throw new HandshakeError('wrong-secret', 'handshake message 1 did not authenticate: the peer does not know the network secret');
    }
    ss.mixHash(this.e.publicKey);
    ss.mixKey(this.e.publicKey);
    ss.mixKey(dh(this.e.privateKey, re));
    const encS = ss.encryptAndHash(this.s.publicKey);
    ss.mixKey(dh(this.s.privateKey, re));
    const encP = ss.encryptAndHash(payload2);
    return concat(Uint8Array.of(MSG2), this.e.publicKey, encS, encP);
  }

  message3(msg: Uint8Array): HandshakeResult {
    if (msg[0] !== MSG3 || msg.length < 1 + DHLEN + TAGLEN + TAGLEN || !this.re) {
      throw new HandshakeError('malformed', 'malformed handshake message 3');
    }
    const ss = this.ss;
    let rs: Uint8Array;
    let payload3: Uint8Array;
    try {
      rs = ss.decryptAndHash(msg.subarray(1, 1 + DHLEN + TAGLEN));
      ss.mixKey(dh(this.e.privateKey, rs));
      payload3 = ss.decryptAndHash(msg.subarray(1 + DHLEN + TAGLEN));
    } catch {
      throw new HandshakeError('malformed', 'handshake message 3 did not authenticate');
    }
    const [recv, send] = ss.split();
    return { send, recv, remoteStatic: rs, remotePayload: payload3 };
  }
}

export function rejectMessage(reason: RejectReason): Uint8Array {
  return concat(Uint8Array.of(REJECT), sodium().from_string(reason));
}

/**
 * The control-plane handshake: exactly Noise_XXpsk0_25519_ChaChaPoly_BLAKE2b (Noise spec rev. 34), over
 * libsodium's X25519, ChaCha20-Poly1305 (IETF) and BLAKE2b-512 (HASHLEN 64, BLOCKLEN 128, HMAC per RFC 2104).
 *
 * ```
 *   XXpsk0:
 *     -> psk, e            message 1: 0x01 'B' 'X' 'R' version | e.pub(32) | tag(16)
 *     <- e, ee, s, es      message 2: 0x02 | e.pub(32) | enc(s.pub)(48) | enc(payload)
 *     -> s, se             message 3: 0x03 | enc(s.pub)(48) | enc(payload)
 *   a refusal instead of message 2: 0xFF | reason (utf-8: "wrong-secret", "version", "malformed")
 * ```
 * On the wire each Noise message is preceded by one type byte; message 1 also carries the prologue ('BXR' +
 * version) in clear, which both sides pass to Noise as its prologue. The bytes after that header are the Noise
 * message itself, so the core below (`HandshakeState`) is the spec's, and is checked against the published
 * test vectors (test/unit/noise-vectors.test.ts) with any XX pattern and psk positions.
 * The pre-shared key is the network key (src/crypto/keys.ts), mixed in before anything else, so a peer that
 * does not know the secret fails on message 1, before the responder reveals anything (its static key is only
 * sent encrypted in message 2). This module is pure: no I/O, no timers; src/channel/channel.ts drives it.
 */
import { sodium } from './sodium';
import { generateKeyPair, type KeyPair } from './keys';
import { PROTOCOL_VERSION, HANDSHAKE_MAGIC } from '../constants';

export const PROTOCOL_NAME = 'Noise_XXpsk0_25519_ChaChaPoly_BLAKE2b';
const DHLEN = 32;
const TAGLEN = 16;
const HASHLEN = 64;
const BLOCKLEN = 128;
const KEYLEN = 32;

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

/** HASH: BLAKE2b with a 64-byte output (BLAKE2b-512). */
export function hash(data: Uint8Array): Uint8Array {
  return sodium().crypto_generichash(HASHLEN, data, null);
}

/** HMAC-BLAKE2b-512 (RFC 2104 with BLOCKLEN 128), as the Noise spec defines HMAC-HASH. */
export function hmac(key: Uint8Array, data: Uint8Array): Uint8Array {
  const k = new Uint8Array(BLOCKLEN);
  k.set(key.length > BLOCKLEN ? hash(key) : key);
  const ipad = k.map((b) => b ^ 0x36);
  const opad = k.map((b) => b ^ 0x5c);
  return hash(concat(opad, hash(concat(ipad, data))));
}

function hkdf(ck: Uint8Array, ikm: Uint8Array, outputs: 2 | 3): Uint8Array[] {
  const temp = hmac(ck, ikm);
  const o1 = hmac(temp, Uint8Array.of(1));
  const o2 = hmac(temp, concat(o1, Uint8Array.of(2)));
  if (outputs === 2) return [o1, o2];
  return [o1, o2, hmac(temp, concat(o2, Uint8Array.of(3)))];
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

  constructor(protocolName: string) {
    const name = sodium().from_string(protocolName);
    if (name.length <= HASHLEN) {
      this.h = new Uint8Array(HASHLEN);
      this.h.set(name);
    } else this.h = hash(name);
    this.ck = this.h;
  }

  mixHash(data: Uint8Array): void {
    this.h = hash(concat(this.h, data));
  }
  mixKey(ikm: Uint8Array): void {
    const [ck, k] = hkdf(this.ck, ikm, 2);
    this.ck = ck;
    this.k = k.subarray(0, KEYLEN);
    this.n = 0;
  }
  mixKeyAndHash(ikm: Uint8Array): void {
    const [ck, th, k] = hkdf(this.ck, ikm, 3);
    this.ck = ck;
    this.mixHash(th);
    this.k = k.subarray(0, KEYLEN);
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
    const [k1, k2] = hkdf(this.ck, new Uint8Array(0), 2);
    return [new CipherState(k1.subarray(0, KEYLEN)), new CipherState(k2.subarray(0, KEYLEN))];
  }
}

type Token = 'e' | 's' | 'ee' | 'es' | 'se' | 'ss' | 'psk';
/** The XX pattern's three messages. */
const XX: Token[][] = [['e'], ['e', 'ee', 's', 'es'], ['s', 'se']];

/** XX with `psk` tokens at the given positions (0: start of message 1; N: end of message N), as in `XXpsk0+psk3`. */
function xxWithPsks(positions: number[]): Token[][] {
  const msgs = XX.map((m) => [...m]);
  for (const p of positions) {
    if (p === 0) msgs[0].unshift('psk');
    else msgs[p - 1].push('psk');
  }
  return msgs;
}

export interface HandshakeStateOptions {
  initiator: boolean;
  prologue: Uint8Array;
  s: KeyPair;
  /** The ephemeral key; a fresh one unless given (only test vectors give one). */
  e?: KeyPair;
  /** Pre-shared keys, in the order of `pskPositions`. */
  psks: Uint8Array[];
  /** Where the psk tokens go ([0] for XXpsk0). */
  pskPositions: number[];
  /** The protocol name hashed first; `Noise_XX<psk modifiers>_25519_ChaChaPoly_BLAKE2b`. */
  protocolName: string;
}

/**
 * The spec's HandshakeState for the XX pattern (with psk modifiers): writeMessage/readMessage in turn, then
 * split(). Throws (a libsodium error) when a message does not authenticate.
 */
export class HandshakeState {
  private readonly ss: SymmetricState;
  private readonly msgs: Token[][];
  private readonly psks: Uint8Array[];
  private readonly hasPsk: boolean;
  private readonly s: KeyPair;
  private readonly initiator: boolean;
  private e: KeyPair | null;
  private re: Uint8Array | null = null;
  private rs: Uint8Array | null = null;
  private index = 0;

  constructor(o: HandshakeStateOptions) {
    this.ss = new SymmetricState(o.protocolName);
    this.ss.mixHash(o.prologue);
    this.msgs = xxWithPsks(o.pskPositions);
    this.psks = [...o.psks];
    this.hasPsk = o.pskPositions.length > 0;
    this.s = o.s;
    this.e = o.e ?? null;
    this.initiator = o.initiator;
    if (this.psks.length !== o.pskPositions.length || this.psks.some((p) => p.length !== 32)) {
      throw new Error('a Noise handshake needs one 32-byte pre-shared key per psk token');
    }
  }

  get remoteStatic(): Uint8Array | null {
    return this.rs;
  }
  get handshakeHash(): Uint8Array {
    return this.ss.h;
  }
  get done(): boolean {
    return this.index >= this.msgs.length;
  }

  private dh(token: 'ee' | 'es' | 'se' | 'ss'): Uint8Array {
    // es: the initiator's e with the responder's s; se: the initiator's s with the responder's e.
    const localEphemeral = token === 'ee' || (token === 'es' && this.initiator) || (token === 'se' && !this.initiator);
    const remoteEphemeral = token === 'ee' || (token === 'es' && !this.initiator) || (token === 'se' && this.initiator);
    const local = localEphemeral ? this.e! : this.s;
    const remote = remoteEphemeral ? this.re! : this.rs!;
    return sodium().crypto_scalarmult(local.privateKey, remote);
  }

  private nextTokens(writing: boolean): Token[] {
    if (this.done) throw new Error('the handshake is over');
    if ((this.index % 2 === 0) !== (this.initiator === writing)) throw new Error('not this side’s turn to ' + (writing ? 'write' : 'read'));
    return this.msgs[this.index++];
  }

  writeMessage(payload: Uint8Array): Uint8Array {
    const out: Uint8Array[] = [];
    for (const t of this.nextTokens(true)) {
      if (t === 'e') {
        this.e ??= generateKeyPair();
        out.push(this.e.publicKey);
        this.ss.mixHash(this.e.publicKey);
        if (this.hasPsk) this.ss.mixKey(this.e.publicKey);
      } else if (t === 's') out.push(this.ss.encryptAndHash(this.s.publicKey));
      else if (t === 'psk') this.ss.mixKeyAndHash(this.psks.shift()!);
      else this.ss.mixKey(this.dh(t));
    }
    out.push(this.ss.encryptAndHash(payload));
    return concat(...out);
  }

  /** Reads one message; throws RangeError when it is too short, or libsodium's error when it does not authenticate. */
  readMessage(msg: Uint8Array): Uint8Array {
    let off = 0;
    const take = (n: number): Uint8Array => {
      if (off + n > msg.length) throw new RangeError('handshake message too short');
      return msg.subarray(off, (off += n));
    };
    for (const t of this.nextTokens(false)) {
      if (t === 'e') {
        this.re = Uint8Array.from(take(DHLEN));
        this.ss.mixHash(this.re);
        if (this.hasPsk) this.ss.mixKey(this.re);
      } else if (t === 's') this.rs = Uint8Array.from(this.ss.decryptAndHash(take(this.ss.k ? DHLEN + TAGLEN : DHLEN)));
      else if (t === 'psk') this.ss.mixKeyAndHash(this.psks.shift()!);
      else this.ss.mixKey(this.dh(t));
    }
    const rest = msg.subarray(off);
    if (this.ss.k && rest.length < TAGLEN) throw new RangeError('handshake message too short');
    return this.ss.decryptAndHash(rest);
  }

  /** The transport ciphers: [initiator to responder, responder to initiator]. */
  split(): [CipherState, CipherState] {
    if (!this.done) throw new Error('split before the handshake is over');
    return this.ss.split();
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

function boxerState(initiator: boolean, psk: Uint8Array, s: KeyPair, e?: KeyPair): HandshakeState {
  return new HandshakeState({ initiator, prologue: prologue(), s, e, psks: [psk], pskPositions: [0], protocolName: PROTOCOL_NAME });
}

/** The initiator's side: message 1 out, message 2 in, message 3 out. */
export class Initiator {
  private readonly hs: HandshakeState;
  constructor(psk: Uint8Array, s: KeyPair, e?: KeyPair) {
    this.hs = boxerState(true, psk, s, e);
  }

  message1(): Uint8Array {
    return concat(Uint8Array.of(MSG1), prologue(), this.hs.writeMessage(new Uint8Array(0)));
  }

  /** Reads message 2 (or a refusal); returns message 3 and the session. Throws HandshakeError. */
  message2(msg: Uint8Array, payload3: Uint8Array): { message3: Uint8Array; result: HandshakeResult } {
    if (msg[0] === REJECT) {
      const reason = Buffer.from(msg.subarray(1)).toString('utf8');
      throw new HandshakeError(
        reason === 'version' ? 'version' : reason === 'malformed' ? 'malformed' : 'wrong-secret',
        `refused by the peer: ${reason.slice(0, 40)}`,
      );
    }
    if (msg[0] !== MSG2 || msg.length < 1 + DHLEN + DHLEN + TAGLEN + TAGLEN) {
      throw new HandshakeError('malformed', 'malformed handshake message 2');
    }
    let payload2: Uint8Array;
    try {
      payload2 = this.hs.readMessage(msg.subarray(1));
    } catch {
      throw new HandshakeError('wrong-secret', 'handshake message 2 did not authenticate: the peer does not know the network secret');
    }
    const m3 = this.hs.writeMessage(payload3);
    const [send, recv] = this.hs.split();
    return {
      message3: concat(Uint8Array.of(MSG3), m3),
      result: { send, recv, remoteStatic: this.hs.remoteStatic!, remotePayload: payload2 },
    };
  }
}

/** The responder's side: message 1 in, message 2 out, message 3 in. */
export class Responder {
  private readonly hs: HandshakeState;
  private read1 = false;
  constructor(psk: Uint8Array, s: KeyPair, e?: KeyPair) {
    this.hs = boxerState(false, psk, s, e);
  }

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
    try {
      this.hs.readMessage(msg.subarray(1 + pro.length));
    } catch {
      throw new HandshakeError('wrong-secret', 'handshake message 1 did not authenticate: the peer does not know the network secret');
    }
    this.read1 = true;
    return concat(Uint8Array.of(MSG2), this.hs.writeMessage(payload2));
  }

  message3(msg: Uint8Array): HandshakeResult {
    if (msg[0] !== MSG3 || msg.length < 1 + DHLEN + TAGLEN + TAGLEN || !this.read1) {
      throw new HandshakeError('malformed', 'malformed handshake message 3');
    }
    let payload3: Uint8Array;
    try {
      payload3 = this.hs.readMessage(msg.subarray(1));
    } catch {
      throw new HandshakeError('malformed', 'handshake message 3 did not authenticate');
    }
    const [recv, send] = this.hs.split();
    return { send, recv, remoteStatic: this.hs.remoteStatic!, remotePayload: payload3 };
  }
}

export function rejectMessage(reason: RejectReason): Uint8Array {
  return concat(Uint8Array.of(REJECT), sodium().from_string(reason));
}

/**
 * Warming the code every connection set-up runs, once, when the virtual network starts: the shim channel's
 * frames and requests, broker messages (`open`, `result`), their envelopes (`vnet`, `fwd`), sealing for a
 * member through the seed, and the peer link's cipher. V8 compiles a function lazily on its first call and
 * runs it in its interpreter until it has been called often: measured on cold agents, the first connection to
 * a member took ~20 ms and the next few ~7 ms, against ~1.2 ms once warm. The warm-up runs on data of its
 * own (no socket, no member is told anything), in slices of WARM_SLICE rounds between the agent's other work,
 * WARM_ROUNDS rounds in all (tens of milliseconds of CPU, once).
 */
import { WARM_ROUNDS, WARM_SEAL_EVERY, WARM_SLICE } from '../constants';
import type { KeyPair } from '../crypto/keys';
import { CipherState } from '../crypto/noise';
import { openFrom, sealFor } from '../crypto/origin';
import { sodium } from '../crypto/sodium';
import { decodeMessage, encodeMessage } from '../wire/messages';
import { encodeFrame as encodeLinkFrame, FrameReader as LinkFrameReader } from '../wire/frame';
import { decodeVnet, encodeVnet, type VnetMessage } from '../vnet/messages';
import { acceptedReply, connectReply, decodeRequest, encodeFrame, errnoReply, FrameReader, ipBytes, MSG } from './shim-codec';

/** One round: what a punched set-up's two agents run, on made-up values. Returns a checksum (so none is dead code). */
function round(i: number, keys: KeyPair, send: CipherState, recv: CipherState): number {
  // The shim's CONNECTING and ACCEPTED, framed and read back.
  const connecting = Buffer.alloc(24);
  ipBytes('100.96.0.2').copy(connecting, 0);
  connecting.writeUInt16LE(8080, 4);
  connecting.writeUInt16LE(40000 + (i % 1000), 6);
  ipBytes('198.51.100.7').copy(connecting, 8);
  connecting.writeUInt16LE(45000, 12);
  connecting.writeUInt16LE(45000, 14);
  connecting.writeBigUInt64LE(BigInt(i), 16);
  const accepted = Buffer.alloc(12);
  accepted.writeUInt16LE(8080, 0);
  ipBytes('127.66.0.2').copy(accepted, 4);
  accepted.writeUInt16LE(50000, 8);
  const frames = new FrameReader().push(Buffer.concat([encodeFrame(MSG.CONNECTING, i, connecting), encodeFrame(MSG.ACCEPTED, i, accepted)]));
  let sum = 0;
  for (const f of frames) sum += decodeRequest(f.type, f.body).type;
  sum += encodeFrame(MSG.ACCEPTED, i, acceptedReply({ errno: 0, vaddr: '100.96.0.2', vport: 40000 })).length;
  sum += encodeFrame(MSG.CONNECT_RESULT, i, errnoReply(0)).length + connectReply({ errno: 0, real: { ip: '198.51.100.7', port: 45000 }, connId: BigInt(i) }).length;
  // The broker's messages, in their envelope, over a link's cipher and through the seed.
  const msgs: VnetMessage[] = [
    { k: 'open', cid: `1:${i}`, vport: 8080, cport: 40000 + (i % 1000), cext: { ip: '198.51.100.7', port: 40000 }, punch: 45000 },
    { k: 'result', cid: `1:${i}`, errno: 0 },
  ];
  for (const m of msgs) {
    const plain = encodeMessage({ t: 'vnet', payload: encodeVnet(m) });
    const n = send.counter;
    const link = new LinkFrameReader(1 << 16).push(encodeLinkFrame(send.seal(plain)));
    const back = decodeMessage(recv.openAt(n, link[0]));
    if (back.t === 'vnet') sum += decodeVnet(back.payload).k.length;
  }
  // Sealing for a member through the seed costs an X25519 and random bytes: a few rounds compile it.
  if (i % WARM_SEAL_EVERY !== 0) return sum;
  const sealed = sealFor(encodeMessage({ t: 'vnet', payload: encodeVnet(msgs[1]) }), keys.publicKey, keys);
  const fwd = decodeMessage(encodeMessage({ t: 'fwd', to: 1, from: 1, body: sealed }));
  if (fwd.t === 'fwd') sum += openFrom(fwd.body, keys.publicKey, keys)?.length ?? 0;
  return sum;
}

/** Runs the warm-up in slices (setImmediate between them); resolves with the rounds run and the CPU milliseconds it took. */
export function warmSetupPath(keys: KeyPair, rounds = WARM_ROUNDS, stopped: () => boolean = () => false): Promise<{ rounds: number; ms: number }> {
  const k = sodium().randombytes_buf(32);
  const send = new CipherState(k);
  const recv = new CipherState(k);
  const t0 = process.cpuUsage();
  let i = 0;
  return new Promise((resolve) => {
    const slice = () => {
      const end = Math.min(rounds, i + WARM_SLICE);
      for (; i < end && !stopped(); i++) round(i, keys, send, recv);
      if (i < rounds && !stopped()) setImmediate(slice);
      else {
        const c = process.cpuUsage(t0);
        resolve({ rounds: i, ms: (c.user + c.system) / 1000 });
      }
    };
    setImmediate(slice);
  });
}

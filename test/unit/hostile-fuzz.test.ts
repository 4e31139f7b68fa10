// Fuzzing every parser a peer or a program can reach, in process, BOXER_FUZZ_N inputs each (10,000 inside
// `npm test`; `npm run test:hostile` runs 100,000), random bytes and mutations of valid inputs: the handshake
// responder (the seed's and every agent's port), the frame reader,
// the control-plane message decoder and the brokers' message decoder (the shim's channel, over a real Unix
// socket: test/process/hostile-shim-fuzz.test.ts). Each input ends in a value or the parser's own error: no
// other exception (a crash), no hang.
import test from 'ava';
import { sodiumReady } from '../../src/crypto/sodium';
import { deriveNetworkKey, generateKeyPair } from '../../src/crypto/keys';
import { HandshakeError, Initiator, Responder } from '../../src/crypto/noise';
import { FrameError, FrameReader, encodeFrame } from '../../src/wire/frame';
import { MessageError, decodeMessage, encodeMessage, type Message } from '../../src/wire/messages';
import { decodeVnet, encodeVnet } from '../../src/vnet/messages';
import { setSink } from '../../src/util/log';
import { MAX_FRAME } from '../../src/constants';
import { bytes, mutate, N, n, rnd } from '../support/fuzz';

test.before(async () => {
  await sodiumReady();
  setSink(() => undefined);
});

test(`handshake responder: ${n} forged first messages, all refused with a HandshakeError`, (t) => {
  const psk = deriveNetworkKey('the fuzzed network secret');
  const keys = generateKeyPair();
  const valid = new Initiator(psk, generateKeyPair()).message1();
  let refused = 0;
  let other = 0;
  let unchanged = 0;
  for (let i = 0; i < N; i++) {
    const m = i % 2 ? mutate(valid) : bytes(rnd(120));
    // A mutation that gave the valid message back (cut at its full length, nothing appended) is no forgery.
    if (Buffer.from(m).equals(Buffer.from(valid))) {
      unchanged++;
      continue;
    }
    try {
      new Responder(psk, keys).message1(m, new Uint8Array(0));
    } catch (e) {
      if (e instanceof HandshakeError) refused++;
      else other++;
    }
  }
  t.is(other, 0, 'only HandshakeErrors');
  t.is(refused, N - unchanged, 'admitted 0');
  t.log(`${refused} refused, ${unchanged} mutations gave the valid message back (not tried)`);
});

test(`frame reader: ${n} random chunks end in frames or a FrameError, never beyond the limit`, (t) => {
  let frames = 0;
  let errors = 0;
  for (let i = 0; i < N / 100; i++) {
    const r = new FrameReader(1024);
    try {
      for (let j = 0; j < 100; j++) {
        const chunk = j % 3 === 0 ? encodeFrame(bytes(rnd(64))) : Buffer.from(bytes(rnd(32)));
        for (const f of r.push(chunk)) {
          t.true(f.length <= 1024);
          frames++;
        }
      }
    } catch (e) {
      if (!(e instanceof FrameError)) throw e;
      errors++;
    }
  }
  t.true(frames > 0 && errors > 0);
  t.throws(() => new FrameReader(MAX_FRAME).push(Buffer.from([0xff, 0xff, 0xff, 0xff])), { instanceOf: FrameError });
});

test(`control-plane decoder: ${n} random and mutated messages decode or throw MessageError`, (t) => {
  const valid: Message[] = [
    { t: 'ping', n: 1 },
    { t: 'leave' },
    { t: 'fwd', to: 2, from: 1, body: new Uint8Array(40) },
    { t: 'left', id: 3, reason: 'dead' },
    { t: 'punch', sid: 7, phase: 'req', ep: { ip: '198.51.100.1', port: 4000 }, path: 'punched' },
    { t: 'vnet', payload: new Uint8Array(10) },
  ];
  const encoded = valid.map(encodeMessage);
  let ok = 0;
  let refused = 0;
  for (let i = 0; i < N; i++) {
    const m = i % 2 ? mutate(encoded[rnd(encoded.length)]) : bytes(rnd(80));
    try {
      decodeMessage(m);
      ok++;
    } catch (e) {
      if (!(e instanceof MessageError)) t.fail(`not a MessageError: ${(e as Error).stack}`);
      refused++;
    }
  }
  t.is(ok + refused, N);
  t.log(`decoded ${ok}, refused ${refused}`);
});

test(`brokers decoder: ${n} random and mutated vnet messages decode or throw`, (t) => {
  const encoded = [
    encodeVnet({ k: 'open', cid: '1:2', vport: 80, cport: 5000, cext: { ip: '198.51.100.1', port: 4000 }, punch: 41000 }),
    encodeVnet({ k: 'result', cid: '1:2', errno: 111 }),
    encodeVnet({ k: 'relay-open', cid: '1:3', from: 1, vport: 80, cport: 5000, relay: { ip: '198.51.100.2', port: 7000 }, token: new Uint8Array(16) }),
  ];
  let crashes = 0;
  for (let i = 0; i < N; i++) {
    try {
      decodeVnet(i % 2 ? mutate(encoded[rnd(encoded.length)]) : bytes(rnd(80)));
    } catch (e) {
      if (!(e instanceof Error) || e instanceof TypeError || e instanceof RangeError) crashes++;
    }
  }
  t.is(crashes, 0);
});

// Fuzzing every parser a peer or a program can reach, in process, BOXER_FUZZ_N inputs each (10,000 inside
// `npm test`; `npm run test:hostile` runs 100,000), random bytes and mutations of valid inputs: the handshake
// responder (the seed's and every agent's port), the frame reader,
// the control-plane message decoder, the brokers' message decoder, and the shim's channel over a real Unix
// socket. Each input ends in a value or the parser's own error: no other exception (a crash), no hang, and
// the shim channel still answers afterwards.
import test from 'ava';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { sodiumReady } from '../../src/crypto/sodium';
import { deriveNetworkKey, generateKeyPair } from '../../src/crypto/keys';
import { HandshakeError, Initiator, Responder } from '../../src/crypto/noise';
import { FrameError, FrameReader, encodeFrame } from '../../src/wire/frame';
import { MessageError, decodeMessage, encodeMessage, type Message } from '../../src/wire/messages';
import { decodeVnet, encodeVnet } from '../../src/vnet/messages';
import { Broker, type SocketOps, type VnetNetwork } from '../../src/vnet/broker';
import { ShimServer } from '../../src/ipc/shim-server';
import { encodeFrame as frame } from '../../src/ipc/shim-codec';
import { setSink } from '../../src/util/log';
import { MAX_FRAME } from '../../src/constants';

const N = Number(process.env.BOXER_FUZZ_N ?? 10_000);
const n = N.toLocaleString('en');
/** A deterministic stream of bytes, so that a failure can be replayed. */
let seed = 0x5eed;
function rnd(n: number): number {
  seed = (seed * 1103515245 + 12345) >>> 0;
  return seed % n;
}
function bytes(len: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = rnd(256);
  return b;
}
function mutate(valid: Uint8Array): Uint8Array {
  const b = Uint8Array.from(valid);
  const k = 1 + rnd(4);
  for (let i = 0; i < k; i++) {
    const op = rnd(4);
    if (op === 0 && b.length) b[rnd(b.length)] ^= 1 << rnd(8);
    else if (op === 1 && b.length) b[rnd(b.length)] = rnd(256);
    else if (op === 2) return b.subarray(0, rnd(b.length + 1));
    else return Uint8Array.from([...b, ...bytes(rnd(16))]);
  }
  return b;
}

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
  for (let i = 0; i < N; i++) {
    const m = i % 2 ? mutate(valid) : bytes(rnd(120));
    try {
      new Responder(psk, keys).message1(m, new Uint8Array(0));
    } catch (e) {
      if (e instanceof HandshakeError) refused++;
      else other++;
    }
  }
  t.is(other, 0, 'only HandshakeErrors');
  t.is(refused, N, 'admitted 0');
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

test(`shim channel: ${n} random frames over a real Unix socket; the agent stays up and answers`, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'boxer-fuzz-'));
  const netw: VnetNetwork = { self: () => null, members: () => [], predictOwn: () => null, linkPath: () => undefined, ensureLink: async () => 'direct', seedIp: () => null, send: () => undefined };
  const ops = new Proxy({}, { get: () => () => 0 }) as unknown as SocketOps;
  const broker = new Broker(netw, ops);
  const server = new ShimServer(path.join(dir, 's.sock'), broker, { sendFd: () => 0, close: () => undefined });
  await server.start();
  const rssBefore = process.memoryUsage().rss;
  let sent = 0;
  let connections = 0;
  while (sent < N) {
    connections++;
    const c = net.connect(server.path);
    c.on('error', () => undefined);
    await new Promise((r) => c.once('connect', r));
    const parts: Buffer[] = [];
    for (let j = 0; j < 1000 && sent < N; j++, sent++) {
      const type = rnd(10);
      const body = Buffer.from(bytes(type === 7 ? rnd(300) : rnd(40)));
      // Mostly well-framed requests of every type with random bodies; now and then a broken header.
      parts.push(j % 97 === 0 ? Buffer.from(bytes(12)) : frame(type, j, body));
    }
    c.write(Buffer.concat(parts));
    await new Promise((r) => setTimeout(r, 5));
    c.destroy();
  }
  // Still answering: a HELLO on a fresh connection gets its reply.
  const c = net.connect(server.path);
  const reply = await new Promise<Buffer>((resolve, reject) => {
    c.once('data', resolve);
    c.once('error', reject);
    const body = Buffer.alloc(8);
    body.writeUInt32LE(99, 0);
    c.write(frame(1, 1, body));
  });
  c.destroy();
  t.is(reply.readUInt16LE(4), 1);
  t.true(broker.shims.size <= 1024, `HELLO table ${broker.shims.size}`);
  const grew = (process.memoryUsage().rss - rssBefore) / 2 ** 20;
  t.log(`${sent} frames over ${connections} connections; RSS grew ${grew.toFixed(1)} MiB`);
  await server.close();
  broker.close();
});

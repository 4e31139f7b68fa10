// The secure channel in memory: messages both ways; replayed, reordered, forged and oversized frames each
// close that one channel with a logged reason.
import test from 'ava';
import { Duplex } from 'node:stream';
import { Channel } from '../../src/channel/channel';
import { sodiumReady } from '../../src/crypto/sodium';
import { deriveNetworkKey, generateKeyPair } from '../../src/crypto/keys';
import { duplexPair } from '../support/memnet';
import { setSink } from '../../src/util/log';
import { FrameReader, encodeFrame } from '../../src/wire/frame';
import { decodeMessage, encodeMessage } from '../../src/wire/messages';

const logs: string[] = [];
test.before(async () => {
  await sodiumReady();
  setSink((l) => logs.push(l));
});

/** A pair of channels, with a tap that records every byte the initiator sends after the handshake. */
async function pair() {
  const psk = deriveNetworkKey('a secret of sixteen+ chars');
  const [a, b] = duplexPair();
  const sent: Buffer[] = [];
  const origWrite = a.write.bind(a);
  (a as Duplex).write = ((chunk: Buffer, ...rest: never[]) => {
    sent.push(Buffer.from(chunk));
    return origWrite(chunk, ...rest);
  }) as Duplex['write'];
  const [ca, cb] = await Promise.all([
    Channel.initiate(a, { psk, keys: generateKeyPair(), peer: 'b' }),
    Channel.respond(b, { psk, keys: generateKeyPair(), peer: 'a' }),
  ]);
  sent.length = 0;
  return { ca, cb, sent, a, b };
}

function closed(ch: Channel): Promise<string | null> {
  return new Promise((r) => ch.on('close', (reason) => r(reason)));
}

test('messages flow both ways and the static keys are authenticated', async (t) => {
  const { ca, cb } = await pair();
  const atB = new Promise<string>((r) => cb.on('message', (m) => r(m.t)));
  const atA = new Promise<string>((r) => ca.on('message', (m) => r(m.t)));
  ca.start();
  cb.start();
  ca.sendMessage({ t: 'ping', n: 1 });
  cb.sendMessage({ t: 'pong', n: 1 });
  t.deepEqual(await Promise.all([atB, atA]), ['ping', 'pong']);
  t.is(ca.remoteStatic.length, 32);
});

test('a replayed frame closes the channel and says so', async (t) => {
  const { ca, cb, sent, a } = await pair();
  cb.start();
  ca.sendMessage({ t: 'ping', n: 1 });
  const c = closed(cb);
  a.write(sent[0]); // the same frame again
  t.regex((await c) ?? '', /replayed frame/);
});

test('a forged frame closes the channel', async (t) => {
  const { ca, cb, sent, a } = await pair();
  cb.start();
  ca.sendMessage({ t: 'ping', n: 1 });
  const forged = Buffer.from(sent[0]);
  forged[forged.length - 1] ^= 1;
  forged.writeBigUInt64LE(1n, 4); // next counter, bad tag
  const c = closed(cb);
  a.write(forged);
  t.regex((await c) ?? '', /failed authentication/);
});

test('an oversized frame closes the channel before it is buffered', async (t) => {
  const { cb, a } = await pair();
  cb.start();
  const c = closed(cb);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(64 << 20);
  a.write(head);
  t.regex((await c) ?? '', /exceeds the limit/);
});

test('frame reader and message decoder reject what is not valid', (t) => {
  const r = new FrameReader(10);
  t.deepEqual(r.push(encodeFrame(Buffer.from('abc'))).map(String), ['abc']);
  t.throws(() => r.push(encodeFrame(Buffer.alloc(11))), { message: /exceeds the limit/ });
  t.throws(() => decodeMessage(Buffer.from([0xff, 0x00])), { message: /CBOR|map/ });
  t.throws(() => decodeMessage(encodeMessage({ t: 'left', id: 0, reason: 'leave' })), { message: /field id/ });
  t.throws(() => decodeMessage(encodeMessage({ t: 'nope' } as never)), { message: /unknown message type/ });
  t.deepEqual(decodeMessage(encodeMessage({ t: 'ping', n: 3 })), { t: 'ping', n: 3 });
});

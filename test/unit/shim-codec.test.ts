// The shim channel's TypeScript codec (src/ipc/shim-codec.ts) against the C side: the message numbers, header
// size, frame bound and flags are read from native/shim/common/frame.h; bodies laid out as frame.c's body_*
// functions write them decode to the fields they carry; replies are laid out as frame.c's parse_* read them.
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { MSG, FRAME_HDR, FRAME_MAX, FRAME_FLAG_FD, CONNECT_FLAG_NONBLOCK, FrameReader, ShimProtocolError, acceptedReply, connectReply, decodeRequest, encodeFrame, errnoReply, resolveReply } from '../../src/ipc/shim-codec';

const FRAME_H = fs.readFileSync(path.resolve(__dirname, '../../../native/shim/common/frame.h'), 'utf8');

function cEnum(name: string): Record<string, number> {
  const body = new RegExp(`enum ${name} \\{([^}]*)\\}`).exec(FRAME_H)?.[1];
  if (!body) throw new Error(`enum ${name} not found in frame.h`);
  return Object.fromEntries([...body.matchAll(/(\w+)\s*=\s*(\d+)/g)].map((m) => [m[1], Number(m[2])]));
}
function cDefine(name: string): number {
  const m = new RegExp(`#define ${name}\\s+(0x[0-9a-fA-F]+|\\d+)`).exec(FRAME_H);
  if (!m) throw new Error(`#define ${name} not found in frame.h`);
  return Number(m[1]);
}

test('message numbers, header size, frame bound and flags are frame.h\'s', (t) => {
  const fromC = cEnum('shim_msg');
  t.true(Object.keys(fromC).length >= 8, 'the enum was read');
  t.deepEqual(Object.fromEntries(Object.entries(MSG).map(([k, v]) => [`MSG_${k}`, v])), fromC);
  t.is(FRAME_HDR, cDefine('FRAME_HDR'));
  t.is(FRAME_MAX, cDefine('FRAME_MAX'));
  t.is(FRAME_FLAG_FD, cDefine('FRAME_FLAG_FD'));
  t.is(CONNECT_FLAG_NONBLOCK, cDefine('CONNECT_FLAG_NONBLOCK'));
});

/** Little-endian writer, as frame.c's put_* (put_ip: network order). */
function bytes(...parts: Array<['u16' | 'u32' | 'u64' | 'ip' | 'str', number | bigint | string]>): Buffer {
  return Buffer.concat(
    parts.map(([k, v]) => {
      const b = Buffer.alloc(k === 'u16' ? 2 : k === 'u64' ? 8 : k === 'str' ? Buffer.byteLength(String(v)) : 4);
      if (k === 'u16') b.writeUInt16LE(Number(v));
      else if (k === 'u32') b.writeUInt32LE(Number(v));
      else if (k === 'u64') b.writeBigUInt64LE(BigInt(v));
      else if (k === 'ip') Buffer.from(String(v).split('.').map(Number)).copy(b);
      else b.write(String(v));
      return b;
    }),
  );
}

test('request bodies as frame.c writes them decode to their fields', (t) => {
  t.deepEqual(decodeRequest(MSG.HELLO, bytes(['u32', 4242], ['str', 'python3'])), { type: MSG.HELLO, pid: 4242, name: 'python3' });
  t.deepEqual(decodeRequest(MSG.CONNECT, bytes(['ip', '100.96.0.7'], ['u16', 8080], ['u16', 41000], ['u32', CONNECT_FLAG_NONBLOCK])), { type: MSG.CONNECT, vaddr: '100.96.0.7', vport: 8080, localPort: 41000, nonBlocking: true });
  t.false((decodeRequest(MSG.CONNECT, bytes(['ip', '100.96.0.7'], ['u16', 1], ['u16', 2], ['u32', 0])) as { nonBlocking: boolean }).nonBlocking);
  t.deepEqual(decodeRequest(MSG.CONNECTING, bytes(['ip', '100.96.0.7'], ['u16', 80], ['u16', 41000], ['ip', '198.51.100.7'], ['u16', 50001], ['u16', 50007], ['u64', 2n ** 40n])), {
    type: MSG.CONNECTING,
    vaddr: '100.96.0.7',
    vport: 80,
    localPort: 41000,
    real: { ip: '198.51.100.7', port: 50001 },
    punchPort: 50007,
    connId: 2n ** 40n,
  });
  t.deepEqual(decodeRequest(MSG.CONNECT_RESULT, bytes(['u64', 9n], ['u32', 1500])), { type: MSG.CONNECT_RESULT, connId: 9n, waitMs: 1500 });
  t.deepEqual(decodeRequest(MSG.LISTEN, bytes(['u16', 8080], ['u16', 0])), { type: MSG.LISTEN, port: 8080 });
  t.deepEqual(decodeRequest(MSG.ACCEPTED, bytes(['u16', 8080], ['u16', 0], ['ip', '127.66.0.2'], ['u16', 33333], ['u16', 8080])), { type: MSG.ACCEPTED, listenPort: 8080, peer: { ip: '127.66.0.2', port: 33333 }, localPort: 8080 });
  t.deepEqual(decodeRequest(MSG.RESOLVE, bytes(['str', 'web.boxer'])), { type: MSG.RESOLVE, name: 'web.boxer' });
  const short = t.throws(() => decodeRequest(MSG.CONNECTING, Buffer.alloc(23)));
  t.true(short instanceof ShimProtocolError);
  t.throws(() => decodeRequest(99, Buffer.alloc(0)), { message: /unknown request type 99/ });
});

test('replies are laid out as frame.c parses them', (t) => {
  t.deepEqual(errnoReply(111), bytes(['u32', 111]));
  t.deepEqual(connectReply({ errno: 0, real: { ip: '198.51.100.7', port: 50001 }, connId: 7n }), bytes(['u32', 0], ['ip', '198.51.100.7'], ['u16', 50001], ['u16', 0], ['u64', 7n]));
  t.is(connectReply({ errno: 113 }).readInt32LE(0), 113);
  t.deepEqual(acceptedReply({ errno: 0, vaddr: '100.96.0.3', vport: 41000 }), bytes(['u32', 0], ['ip', '100.96.0.3'], ['u16', 41000], ['u16', 0]));
  t.deepEqual(resolveReply(['100.96.0.3', '100.96.0.4'], 2), bytes(['u32', 0], ['u32', 2], ['ip', '100.96.0.3'], ['ip', '100.96.0.4']));
  t.deepEqual(resolveReply([], 2), bytes(['u32', 2]));
});

test('frames: encoded with the header, read back across arbitrary cuts; a bad length is refused', (t) => {
  const a = encodeFrame(MSG.LISTEN, 5, bytes(['u16', 80], ['u16', 0]));
  const b = encodeFrame(MSG.ACCEPTED, 6, errnoReply(0), FRAME_FLAG_FD);
  t.deepEqual(a.subarray(0, FRAME_HDR), bytes(['u32', FRAME_HDR + 4], ['u16', MSG.LISTEN], ['u16', 0], ['u32', 5]));
  const r = new FrameReader();
  const all = Buffer.concat([a, b]);
  const got = [...r.push(all.subarray(0, 5)), ...r.push(all.subarray(5, 20)), ...r.push(all.subarray(20))];
  t.deepEqual(got, [
    { type: MSG.LISTEN, id: 5, body: bytes(['u16', 80], ['u16', 0]) },
    { type: MSG.ACCEPTED, id: 6, body: errnoReply(0) },
  ]);
  t.throws(() => new FrameReader().push(bytes(['u32', FRAME_MAX + 1], ['u16', 1], ['u16', 0], ['u32', 1])), { instanceOf: ShimProtocolError });
  t.throws(() => new FrameReader().push(bytes(['u32', 4], ['u16', 1], ['u16', 0], ['u32', 1])), { instanceOf: ShimProtocolError });
});

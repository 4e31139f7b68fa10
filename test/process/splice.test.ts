/**
 * The addon's kernel relay (splice(): two connected TCP sockets joined by splice(2) on threads of their own),
 * on loopback: bytes verified both ways with the bytes already read written first, half-close passed on, a
 * reset on one side reaching the other, spliceAbortAll, and bad arguments. Serial: the relays in progress
 * are counted process-wide.
 */
import test from 'ava';
import crypto from 'node:crypto';
import net from 'node:net';
import { native } from '../support/native';

interface Pair {
  outer: net.Socket; // a peer (the program's end)
  inner: net.Socket; // the relay's end
}

/** A connected loopback pair: outer connects, inner is the accepted end. */
async function pair(): Promise<Pair> {
  const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const inner = new Promise<net.Socket>((r) => server.once('connection', r));
  const outer = net.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  await new Promise<void>((r) => outer.once('connect', r));
  const s = await inner;
  server.close();
  return { outer, inner: s };
}

/** Joins the inner ends of two pairs with splice(); the Node sockets of the inner ends are destroyed. */
function join(a: Pair, b: Pair, headToA?: Buffer, headToB?: Buffer) {
  const fa = (a.inner as unknown as { _handle: { fd: number } })._handle.fd;
  const fb = (b.inner as unknown as { _handle: { fd: number } })._handle.fd;
  const done = native().splice(fa, fb, headToA, headToB);
  a.inner.destroy();
  b.inner.destroy();
  return done;
}

function collect(s: net.Socket): Promise<{ data: Buffer; error?: string }> {
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    s.on('data', (d: Buffer) => parts.push(d));
    s.once('end', () => resolve({ data: Buffer.concat(parts) }));
    s.once('error', (e: NodeJS.ErrnoException) => resolve({ data: Buffer.concat(parts), error: e.code }));
  });
}

const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');

test.serial('bytes both ways, verified; the bytes already read go first; half-close passes through', async (t) => {
  const a = await pair();
  const b = await pair();
  const up = crypto.randomBytes(3 << 20);
  const down = crypto.randomBytes(1 << 20);
  const done = join(a, b, Buffer.from('to-a:'), Buffer.from('to-b:'));
  const gotB = collect(b.outer);
  const gotA = collect(a.outer);
  a.outer.end(up); // A sends and half-closes; B's reply still flows back after that
  const fromA = await gotB;
  t.is(fromA.error, undefined);
  t.is(sha(fromA.data), sha(Buffer.concat([Buffer.from('to-b:'), up])));
  b.outer.end(down);
  const fromB = await gotA;
  t.is(sha(fromB.data), sha(Buffer.concat([Buffer.from('to-a:'), down])));
  const r = await done;
  t.deepEqual(r, { aToB: up.length + 5, bToA: down.length + 5, reset: false });
  t.is(native().spliceActive(), 0);
});

test.serial('a reset on one side resets the other', async (t) => {
  const a = await pair();
  const b = await pair();
  const done = join(a, b);
  const gotB = collect(b.outer);
  a.outer.write('hello');
  await new Promise<void>((r) => b.outer.once('readable', r));
  a.outer.resetAndDestroy();
  const res = await gotB;
  t.is(res.error, 'ECONNRESET');
  t.true((await done).reset);
});

test.serial('spliceAbortAll resets the relays in progress', async (t) => {
  const a = await pair();
  const b = await pair();
  const done = join(a, b);
  const gotA = collect(a.outer);
  const gotB = collect(b.outer);
  t.is(native().spliceActive(), 1);
  t.is(native().spliceAbortAll(), 1);
  t.true((await done).reset);
  t.is((await gotA).error, 'ECONNRESET');
  t.is((await gotB).error, 'ECONNRESET');
});

test.serial('bad arguments: EBADF / EINVAL, nothing taken', (t) => {
  const n = native();
  t.throws(() => n.splice(-1, 3), { code: 'EBADF' });
  t.throws(() => n.splice(999999, 999998), { code: 'EBADF' });
  t.throws(() => n.splice(0, 1, 'x' as unknown as Buffer), { code: 'EINVAL' });
  t.is(n.spliceActive(), 0);
});

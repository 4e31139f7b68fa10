// Fuzzing the shim's channel over a real Unix socket, BOXER_FUZZ_N frames (test/support/fuzz.ts): random
// bodies of every request type, now and then a broken header. The agent stays up, its HELLO table bounded,
// and still answers afterwards.
import test from 'ava';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Broker, type SocketOps, type VnetNetwork } from '../../src/vnet/broker';
import { ShimServer } from '../../src/ipc/shim-server';
import { encodeFrame as frame } from '../../src/ipc/shim-codec';
import { setSink } from '../../src/util/log';
import { bytes, N, n, rnd } from '../support/fuzz';

test.before(() => {
  setSink(() => undefined);
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

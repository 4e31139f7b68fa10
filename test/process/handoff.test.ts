// Handing an agent-made connection to the program's accept() (src/vnet/handoff.ts), with the addon's sockets on
// loopback: the hand-off is known before the program's accept() can return it (a claim from inside the
// listener's connection handler finds it), claimed once; a closed port rejects and leaves nothing behind;
// close() closes what nobody claimed.
import test from 'ava';
import net from 'node:net';
import { Handoffs, type WakeOps } from '../../src/vnet/handoff';
import { native } from '../support/native';

/** The addon's calls, recording the descriptors closed. */
function ops(): WakeOps & { closed: number[] } {
  const n = native();
  const closed: number[] = [];
  return {
    closed,
    tcpSocket: (reuse) => n.tcpSocket(reuse),
    bind: (fd, ip, port) => n.bind(fd, ip, port),
    localAddress: (fd) => n.localAddress(fd),
    connectStart: (fd, ip, port) => n.connectStart(fd, ip, port),
    connectWait: (fd, ms) => n.connectWait(fd, ms),
    setLinger0: (fd) => n.setLinger0(fd),
    close: (fd) => {
      closed.push(fd);
      // Only the wake sockets are real here: the handed "fds" of these tests are made-up numbers.
      if (fd > 1000) return;
      n.close(fd);
    },
  };
}

async function listener(): Promise<{ server: net.Server; port: number; accepted: Promise<net.Socket> }> {
  const server = net.createServer();
  // Our end of a claimed wake connection is reset (no TIME_WAIT); under the shim this end is replaced first.
  server.on('connection', (s) => s.on('error', () => undefined));
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as net.AddressInfo).port, accepted };
}

test('a claim made as soon as the program accepts gets the socket, once; the wake socket is closed then', async (t) => {
  const o = ops();
  const h = new Handoffs(o);
  const l = await listener();
  try {
    const claimed = l.accepted.then((s) => h.claim(s.remotePort!));
    await h.offer(l.port, { fd: 4242, vaddr: '100.96.0.7', vport: 5555 });
    t.deepEqual(await claimed, { fd: 4242, vaddr: '100.96.0.7', vport: 5555 });
    t.is(h.handed, 1);
    t.is(h.claim((await l.accepted).remotePort!), undefined, 'claimed once');
    t.is(o.closed.length, 1, 'the wake socket, not the handed one');
    t.false(o.closed.includes(4242));
    h.close();
    t.is(o.closed.length, 1);
  } finally {
    l.server.close();
  }
});

test('an offer to a closed port rejects (ECONNREFUSED) and leaves nothing to claim', async (t) => {
  const o = ops();
  const h = new Handoffs(o);
  const l = await listener();
  const port = l.port;
  await new Promise<void>((resolve) => l.server.close(() => resolve()));
  await t.throwsAsync(h.offer(port, { fd: 4343, vaddr: '100.96.0.2', vport: 1 }), { code: 'ECONNREFUSED' });
  t.is(o.closed.length, 1, 'its wake socket closed');
  t.false(o.closed.includes(4343), 'the handed socket stays the caller’s');
  h.close();
  t.is(o.closed.length, 1, 'nothing left behind');
});

test('close() closes the sockets nobody claimed, and their wake sockets', async (t) => {
  const o = ops();
  const h = new Handoffs(o);
  const l = await listener();
  try {
    await h.offer(l.port, { fd: 4444, vaddr: '100.96.0.3', vport: 2 });
    h.close();
    t.true(o.closed.includes(4444));
    t.is(o.closed.length, 2);
  } finally {
    l.server.close();
  }
});

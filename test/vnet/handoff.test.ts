// Handing an agent-made connection to the program's accept() (src/vnet/handoff.ts), on loopback: the claim
// finds the socket whichever comes first, the program's accept() or the agent's view of the wake connection;
// it does not wait when nothing more can come; unclaimed sockets are closed.
import test from 'ava';
import net from 'node:net';
import { Handoffs, HANDOFF_CLAIM_WAIT_MS } from '../../src/vnet/handoff';

async function listener(): Promise<{ server: net.Server; port: number; accepted: Promise<net.Socket> }> {
  const server = net.createServer();
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as net.AddressInfo).port, accepted };
}

test('a claim made as soon as the program accepts (before the wake is known) gets the socket', async (t) => {
  const closed: number[] = [];
  const h = new Handoffs((fd) => closed.push(fd));
  const l = await listener();
  try {
    // The program side claims from inside its 'connection' handler: typically before offer() has seen its own
    // connect complete.
    const claimed = l.accepted.then((s) => h.claim(s.remotePort!));
    await h.offer(l.port, { fd: 42, vaddr: '100.96.0.7', vport: 5555 });
    t.deepEqual(await claimed, { fd: 42, vaddr: '100.96.0.7', vport: 5555 });
    t.is(h.handed, 1);
    t.is(await h.claim((await l.accepted).remotePort!), undefined, 'claimed once');
    h.close();
    t.deepEqual(closed, [], 'a claimed socket belongs to the program');
  } finally {
    l.server.close();
  }
});

test('no offer in flight: a claim for an unknown port answers at once; a failed offer ends the wait', async (t) => {
  const h = new Handoffs(() => undefined);
  const t0 = Date.now();
  t.is(await h.claim(1), undefined);
  // An offer to a closed port rejects; a claim waiting meanwhile is released then, not after the full wait.
  const l = await listener();
  const port = l.port;
  await new Promise<void>((resolve) => l.server.close(() => resolve()));
  const offer = h.offer(port, { fd: 7, vaddr: '100.96.0.2', vport: 1 });
  const claim = h.claim(2);
  await t.throwsAsync(offer, { code: 'ECONNREFUSED' });
  t.is(await claim, undefined);
  t.true(Date.now() - t0 < HANDOFF_CLAIM_WAIT_MS, `released after ${Date.now() - t0} ms`);
});

test('close() closes the sockets nobody claimed', async (t) => {
  const closed: number[] = [];
  const h = new Handoffs((fd) => closed.push(fd));
  const l = await listener();
  try {
    await h.offer(l.port, { fd: 9, vaddr: '100.96.0.3', vport: 2 });
    h.close();
    t.deepEqual(closed, [9]);
  } finally {
    l.server.close();
  }
});

/**
 * Clients outside the network, at native cost (src/vnet/sources.ts): a server under Boxer on a public VM is
 * used by two members behind one port-preserving NAT (fsa, fsb: split port ranges) and, meanwhile, by clients
 * that are no members: a public host, a client on the VM itself (loopback), and a plain program behind the
 * very NAT those members share, from a port outside both members' ranges. The members are named by their
 * virtual addresses; every outside client is answered with its real address without the shim asking the
 * agent (`acceptsAsked` counts only the members' connections), so none waits for an announcement.
 */
import path from 'node:path';
import { labTest } from './helpers';
import { LabNet, PROGRAMS } from './labnet';

const lt = labTest();
const PORT = 8300;
const SERVER = path.join(PROGRAMS, 'peer_server.py');
const CLIENT = path.join(PROGRAMS, 'peer_client.py');
/** Connections per outside client; the old 1 s (200 ms on loopback) wait per connection would take 50 s (10 s). */
const OUTSIDE_N = 50;
/** Member connections per member. */
const MEMBER_N = 3;

lt.test('outside clients are served at once with their real address; members behind one NAT are named', async (t, lab) => {
  t.timeout(4 * 60_000);
  const net = new LabNet(lab);
  try {
    await net.startSeed();
    const web = net.member('vm1', 'web', 3, ['python3', SERVER, String(PORT)]);
    const client = (name: string) => ['sh', '-c', `echo ADDR $BOXER_ADDR; RETRY=1 python3 ${CLIENT} web ${PORT} ${MEMBER_N}; while [ ! -e "$STOP" ]; do sleep 0.2; done`];
    const ca = net.member('fsa', 'ca', 3, client('ca'));
    const cb = net.member('fsb', 'cb', 3, client('cb'));
    await net.waitFor(web, /LISTENING/);
    for (const c of [ca, cb]) {
      const done = await net.waitFor(c, /DONE (\d+) /);
      t.is(done[1], String(MEMBER_N), c.out());
      const addr = (await net.waitFor(c, /ADDR (\S+)/))[1];
      t.regex(c.out(), new RegExp(`^SEEN ${addr.replace(/\./g, '\\.')} \\d+$`, 'm'), `${c.name} named by its virtual address: ${c.out()}`);
    }

    const vm1 = lab.node('vm1').address;
    const outside = async (node: string, host: string, n: number, lport?: number) => {
      const args = [CLIENT, host, String(PORT), String(n), ...(lport ? [String(lport)] : [])];
      const r = await lab.exec(node, 'python3', args, { timeoutMs: 90_000 });
      t.is(r.code, 0, r.stderr);
      const done = /DONE (\d+) (\d+)/.exec(r.stdout);
      t.truthy(done, r.stdout);
      t.is(done![1], String(n), r.stdout);
      return { seen: [...r.stdout.matchAll(/^SEEN (\S+) (\d+)$/gm)].map((m) => m[1]), ms: Number(done![2]) };
    };
    const pub = await outside('seed', vm1, OUTSIDE_N);
    t.deepEqual(pub.seen, [lab.node('seed').address], 'a public host is seen at its real address');
    t.true(pub.ms < 20_000, `${OUTSIDE_N} connections from a public host took ${pub.ms} ms`);
    const local = await outside('vm1', '127.0.0.1', OUTSIDE_N);
    t.deepEqual(local.seen, ['127.0.0.1'], 'a client on the same host is seen at its real address');
    t.true(local.ms < 5_000, `${OUTSIDE_N} local connections took ${local.ms} ms`);
    // Behind the members' own NAT, from ports below both members' ranges (32768-60999 split between them).
    const shared = await outside('fsa', vm1, 5, 20000);
    t.deepEqual(shared.seen, [lab.node('fsa').publicAddress], 'a stranger behind the members NAT is seen at the NAT address');

    const st = (await net.status('vm1')) as { vnet: { connections: { acceptsAsked: number } } };
    t.is(st.vnet.connections.acceptsAsked, 2 * (MEMBER_N + 1), 'the agent was asked about the members connections only (and their first try)');
  } finally {
    await net.stop();
  }
});

lt.serial('behind a port-randomizing NAT: the member is named (through the server member\'s relay), a stranger at its NAT never is', async (t, lab) => {
  t.timeout(4 * 60_000);
  const net = new LabNet(lab);
  const port = PORT + 1;
  try {
    await net.startSeed();
    const web = net.member('vm1', 'web', 2, ['python3', SERVER, String(port)]);
    // The member and a plain program (no shim: a stranger) on the same node, behind the same random NAT, at once.
    const cr = net.member('fr', 'cr', 2, ['sh', '-c', `echo ADDR $BOXER_ADDR; RETRY=1 python3 ${CLIENT} web ${port} 20; while [ ! -e "$STOP" ]; do sleep 0.2; done`]);
    await net.waitFor(web, /LISTENING/);
    const stranger = lab.exec('fr', 'python3', [CLIENT, lab.node('vm1').address, String(port), '20'], { timeoutMs: 90_000 });
    const done = await net.waitFor(cr, /DONE (\d+) /);
    t.is(done[1], '20', cr.out());
    const addr = (await net.waitFor(cr, /ADDR (\S+)/))[1];
    t.deepEqual([...cr.out().matchAll(/^SEEN (\S+) \d+$/gm)].map((m) => m[1]), [addr], `the member only ever named by its virtual address: ${cr.out()}`);
    const r = await stranger;
    t.deepEqual([...r.stdout.matchAll(/^SEEN (\S+) \d+$/gm)].map((m) => m[1]), [lab.node('fr').publicAddress], `the stranger only ever seen at the NAT's address: ${r.stdout}`);
    const ms = Number(/DONE 20 (\d+)/.exec(r.stdout)?.[1]);
    t.true(ms < 10_000, `20 stranger connections took ${ms} ms (none waits for an announcement)`);
    const st = (await net.status('fr')) as { vnet: { connections: { relayed: number; direct: number } } };
    t.true(st.vnet.connections.relayed >= 20, `the member's connections went through web's relay: ${JSON.stringify(st.vnet.connections)}`);
    t.log(`member: 20 of 20 named ${addr}; stranger: 20 of 20 seen at ${lab.node('fr').publicAddress}, in ${ms} ms`);
  } finally {
    await net.stop();
  }
});

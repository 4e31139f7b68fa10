/**
 * The data path in the lab, with unmodified programs under the shim, on every NAT kind: every ordered pair
 * of ten members (two public VMs and functions behind preserving, shared, random, translating and LAN NATs)
 * opens a connection by name, sends 256 KiB verified by SHA-256, and both ends agree on virtual addresses and
 * ports; the connections took the expected path (direct, punched, relayed).
 */
import type { Lab } from '../../overlay';
import { labTest } from '../lab/helpers';
import { LabNet, PROGRAMS } from './labnet';

const lt = labTest();
const MEMBERS = ['vm1', 'vm2', 'fp', 'fsa', 'fsb', 'fr', 'fta', 'ftb', 'fla', 'flb'];

/** The path a connection from a to b takes (docs/nat-traversal.md, docs/shim.md). */
function expectedPath(lab: Lab, a: string, b: string): 'direct' | 'punched' | 'relayed' {
  const na = lab.node(a);
  const nb = lab.node(b);
  // Behind a random NAT a connection's port names nobody: to a VM it goes through the VM's own relay (routes.ts).
  if (nb.role === 'host') return na.nat === 'random' ? 'relayed' : 'direct';
  if (na.gateway === nb.gateway) {
    const gw = lab.plan.gateways.find((g) => g.name === na.gateway) as unknown as { lan?: boolean };
    return gw.lan ? 'direct' : 'relayed';
  }
  if (na.nat === 'random' || nb.nat === 'random') return 'relayed';
  return 'punched';
}

/** Whether b's shim names a connection from a without asking its agent: it came straight from a VM, or over a LAN. */
function namedFromRoutes(lab: Lab, a: string, b: string): boolean {
  if (expectedPath(lab, a, b) !== 'direct') return false;
  const na = lab.node(a);
  return na.role === 'host' || na.gateway === lab.node(b).gateway;
}

interface MeshResult {
  from: string;
  to: string;
  ok: boolean;
  err?: string;
  local?: string;
  seen_as?: string;
}

lt.test('every ordered pair connects by name with verified bytes and agreeing virtual addresses, over the expected path', async (t, lab) => {
  t.timeout(6 * 60_000);
  const net = new LabNet(lab);
  try {
    await net.startSeed();
    const ms = MEMBERS.map((n) => net.member(n, n, MEMBERS.length, ['python3', `${PROGRAMS}/mesh.py`]));
    await Promise.all(ms.map((m) => net.waitFor(m, /^DONE$/m)));
    const results: MeshResult[] = ms.flatMap((m) =>
      m
        .out()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as MeshResult),
    );
    t.is(results.length, MEMBERS.length * (MEMBERS.length - 1));
    const failures = results.filter((r) => !r.ok).map((r) => `${r.from} -> ${r.to}: ${r.err ?? `client ${r.local}, server saw ${r.seen_as}`}`);
    t.deepEqual(failures, [], failures.join('\n'));
    let relayedTotal = 0;
    // The paths: each member's broker counts the connections it made per path; and the accepted connections
    // its shims asked it about: all but those straight from a VM (an `open` member alone at its address) or
    // over a shared LAN, which the shim names from its route table.
    for (const a of MEMBERS) {
      const want = { direct: 0, punched: 0, relayed: 0, acceptsAsked: 0 };
      // (VM to VM connections are direct-quiet: the agent never hears of them.)
      for (const b of MEMBERS) if (b !== a && !(lab.node(a).role === 'host' && lab.node(b).role === 'host')) want[expectedPath(lab, a, b)]++;
      for (const c of MEMBERS) if (c !== a && !namedFromRoutes(lab, c, a)) want.acceptsAsked++;
      const st = (await net.status(a)) as { vnet: { connections: Record<string, number> } };
      const got = st.vnet.connections;
      t.deepEqual({ direct: got.direct, punched: got.punched, relayed: got.relayed, acceptsAsked: got.acceptsAsked }, want, `paths of ${a}'s connections`);
      relayedTotal += want.relayed;
    }
    // The open members relayed them, each spliced in the kernel (no byte through the agents' JavaScript).
    const relays = await Promise.all(['vm1', 'vm2'].map(async (v) => ((await net.status(v)) as { vnet: { relay: { relayed: number; inKernel: number } } }).vnet.relay));
    t.is(relays[0].relayed + relays[1].relayed, relayedTotal, 'every relayed connection went through vm1 or vm2');
    t.is(relays[0].inKernel + relays[1].inKernel, relayedTotal, 'and was spliced in the kernel');
  } finally {
    await net.stop();
  }
});

lt.serial('a network of functions only: connections without a direct path are relayed by the seed', async (t, lab) => {
  t.timeout(4 * 60_000);
  const net = new LabNet(lab);
  const members = ['fr', 'fp', 'fsa', 'fsb'];
  try {
    await net.startSeed();
    const ms = members.map((n) => net.member(n, n, members.length, ['python3', `${PROGRAMS}/mesh.py`], { env: { MESH_PORT: '7001' } }));
    await Promise.all(ms.map((m) => net.waitFor(m, /^DONE$/m)));
    const results = ms.flatMap((m) =>
      m
        .out()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as MeshResult),
    );
    const failures = results.filter((r) => !r.ok).map((r) => `${r.from} -> ${r.to}: ${r.err ?? `client ${r.local}, server saw ${r.seen_as}`}`);
    t.is(results.length, 12);
    t.deepEqual(failures, [], failures.join('\n'));
    const fr = (await net.status('fr')) as { vnet: { connections: Record<string, number> } };
    t.is(fr.vnet.connections.relayed, 3, 'every connection from the random NAT went through the seed');
  } finally {
    await net.stop();
  }
});

/**
 * Peer links across every NAT kind of the default lab topology: a seed on the public host `seed`, members on
 * the two public VMs and on every function. Every ordered pair pings (an authenticated round trip on the
 * link), each pair uses the expected path, and all of it still holds once the seed is killed (links closed
 * first, so they are opened again without it).
 */
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { labTest } from '../lab/helpers';
import type { Lab } from '../../overlay';

const lt = labTest();

const ROOT = path.resolve(__dirname, '../../..');
const BOXER = path.join(ROOT, 'bin/boxer');
const SECRET = 'lab secret for the paths test';
const SEED_PORT = 7070;
const MEMBERS = ['vm1', 'vm2', 'fp', 'fsa', 'fsb', 'fr', 'fta', 'ftb', 'fla', 'flb'];
/** Bound on one node's round of pings (9 pings, each bounded by the agent's 10 s control timeout). */
const ROUND_MS = 120_000;
const JOIN_MS = 30_000;

/** The path the issue asks for between two lab nodes. */
export function expectedPath(lab: Lab, a: string, b: string): string {
  const na = lab.node(a);
  const nb = lab.node(b);
  if (na.role === 'host' || nb.role === 'host') return 'direct';
  if (na.gateway === nb.gateway) {
    const gw = lab.plan.gateways.find((g) => g.name === na.gateway)! as unknown as { lan?: boolean; hairpin?: boolean };
    if (gw.lan) return 'lan';
    if (gw.hairpin && na.nat !== 'random') return 'hairpin';
    return 'relay';
  }
  if (na.nat === 'random' || nb.nat === 'random') return 'relay';
  return 'punched';
}

function boxer(lab: Lab, node: string, args: string[], timeoutMs: number) {
  return lab.exec(node, process.execPath, [BOXER, ...args], { timeoutMs, env: { BOXER_SECRET: SECRET } });
}

async function pingAll(t: ExecutionContext, lab: Lab, phase: string): Promise<void> {
  const failures: string[] = [];
  await Promise.all(
    MEMBERS.map(async (a) => {
      const others = MEMBERS.filter((b) => b !== a);
      const script = others.map((b) => `${process.execPath} ${BOXER} ping ${b} --json; echo "rc=$?"`).join('; ');
      const r = await lab.exec(a, '/bin/sh', ['-c', script], { timeoutMs: ROUND_MS, env: { BOXER_SECRET: SECRET } });
      const lines = r.stdout.split('\n').filter((l) => l.startsWith('{'));
      others.forEach((b, i) => {
        const want = expectedPath(lab, a, b);
        let got = 'no answer';
        try {
          const reply = JSON.parse(lines[i]) as { ok: boolean; path?: string; error?: string; name?: string };
          got = reply.ok ? `${reply.path}` : `error: ${reply.error}`;
          if (reply.ok && reply.name !== b) got = `answered by ${reply.name}`;
        } catch {
          /* no answer */
        }
        if (got !== want) failures.push(`${phase}: ${a} -> ${b}: expected ${want}, got ${got}`);
      });
    }),
  );
  t.deepEqual(failures, [], failures.join('\n'));
}

lt.test('every ordered pair on every NAT kind pings over the expected path, with and without the seed', async (t, lab) => {
  t.timeout(10 * 60_000);
  const seedIp = lab.node('seed').address;
  const seed = lab.spawn('seed', process.execPath, [BOXER, 'seed', '--listen', `${seedIp}:${SEED_PORT}`], { env: { BOXER_SECRET: SECRET } });
  let seedErr = '';
  seed.stderr!.on('data', (d: Buffer) => (seedErr += d.toString()));
  const agents = MEMBERS.map((n) => {
    const c = lab.spawn(n, process.execPath, [BOXER, 'run', '--seed', `${seedIp}:${SEED_PORT}`, '--name', n, '--nodes', String(MEMBERS.length), '--', 'sleep', '600'], {
      env: { BOXER_SECRET: SECRET },
    });
    let err = '';
    c.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    return { n, c, err: () => err };
  });
  try {
    // Everyone joined and sees everyone.
    const start = Date.now();
    for (;;) {
      const r = await boxer(lab, 'fp', ['status', '--json'], 5_000);
      const members = r.code === 0 ? (JSON.parse(r.stdout) as { members: unknown[] }).members.length : 0;
      if (members === MEMBERS.length) break;
      if (Date.now() - start > JOIN_MS) throw new Error(`only ${members} members joined:\n${agents.map((a) => `${a.n}: ${a.err()}`).join('\n')}\nseed: ${seedErr}`);
      await new Promise((r2) => setTimeout(r2, 300));
    }
    // NAT discovery found every kind.
    const st = JSON.parse((await boxer(lab, 'vm1', ['status', '--json'], 5_000)).stdout) as { members: { name: string; nat: string }[] };
    for (const m of st.members) {
      const node = lab.node(m.name as string);
      t.is(m.nat, node.role === 'host' ? 'open' : node.nat ?? 'none', `NAT kind of ${m.name}`);
    }
    await pingAll(t, lab, 'with the seed');

    seed.kill('SIGKILL');
    for (const n of MEMBERS) {
      const r = await lab.exec(n, process.execPath, ['-e', CLOSE_LINKS], { timeoutMs: 5_000 });
      t.is(r.code, 0, `close-links on ${n}: ${r.stderr}`);
    }
    await new Promise((r) => setTimeout(r, 2_500)); // homes relink
    await pingAll(t, lab, 'without the seed');
  } finally {
    seed.kill('SIGKILL');
    for (const a of agents) a.c.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    for (const a of agents) a.c.kill('SIGKILL');
  }
});

/** Asks the node's only agent to close its links (a test-only control request). */
const CLOSE_LINKS = `
const { controlRequest, findAgent } = require(${JSON.stringify(path.join(ROOT, 'dist/src/ipc/control.js'))});
findAgent().then((p) => controlRequest(p, { op: 'close-links' })).then((r) => { if (!r.ok) process.exit(1); }, (e) => { console.error(e.message); process.exit(1); });
`;

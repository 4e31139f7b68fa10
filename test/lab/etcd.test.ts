/**
 * An etcd cluster (Debian's etcd-server and etcd-client, unmodified Go programs) on the virtual network through
 * the seccomp supervisor (docs/seccomp.md), in the lab as the unprivileged function user: three members behind
 * three different NATs (port-preserving, translating, port-randomizing: punched and relayed peer
 * connections), configured from the member file (`--initial-cluster` built from member names, which etcd
 * resolves with Go's own resolver through the supervisor's name server), elect a leader and serve
 * `etcdctl put/get` from a client member behind a fourth NAT through every endpoint; once the leader is
 * killed, the two left keep a quorum and serve writes and reads again.
 */
import fs from 'node:fs';
import path from 'node:path';
import { labTest } from './helpers';
import { LabNet } from './labnet';

const lt = labTest();
const ETCD_NODES: Record<string, string> = { e1: 'fp', e2: 'fta', e3: 'fr' };
/** etcdctl's own bound per command (the network may still be forming). */
const CTL = 'ETCDCTL_API=3 etcdctl --dial-timeout=3s --command-timeout=5s';

const present = ['etcd', 'etcdctl'].every((b) => (process.env.PATH ?? '').split(':').some((d) => fs.existsSync(path.join(d, b))));

lt.test('etcd: three members behind three NATs elect a leader, serve put/get through every endpoint, survive the loss of one', async (t, lab) => {
  if (!present) return t.fail('etcd-server and etcd-client are not installed (.ci/setup installs them)');
  t.timeout(5 * 60_000);
  const net = new LabNet(lab);
  const kill = (name: string) => path.join('/tmp', `${lab.prefix}-kill-${name}`);
  const phase2 = path.join('/tmp', `${lab.prefix}-etcd-phase2`);
  const N = 4;
  const cluster = `$(awk '$3 ~ /^e[0-9]$/ {printf "%s%s=http://%s:2380", s, $3, $3; s=","}' "$BOXER_NODES_FILE")`;
  const member = (name: string) => [
    'sh',
    '-c',
    `etcd --name ${name} --data-dir "$TMPDIR/etcd-${name}" --listen-peer-urls http://0.0.0.0:2380 --listen-client-urls http://0.0.0.0:2379 ` +
      `--initial-advertise-peer-urls http://${name}:2380 --advertise-client-urls http://${name}:2379 ` +
      `--initial-cluster "${cluster}" --initial-cluster-state new --initial-cluster-token boxer-lab 2>&1 & P=$!; ` +
      `while [ ! -e ${kill(name)} ] && [ ! -e "$STOP" ]; do sleep 0.2; done; kill -9 $P; echo KILLED; while [ ! -e "$STOP" ]; do sleep 0.2; done`,
  ];
  const eps = (names: string[]) => names.map((n) => `http://${n}:2379`).join(',');
  const putGet = (names: string[], tag: string) =>
    names.map((n) => `${CTL} --endpoints=http://${n}:2379 put k-${tag}-${n} v-${tag}-${n} >/dev/null && echo "GET ${tag} ${n} $(${CTL} --endpoints=http://${n}:2379 get --print-value-only k-${tag}-${n})"`).join('; ');
  const client = [
    'sh',
    '-c',
    `i=0; until ${CTL} --endpoints=${eps(['e1', 'e2', 'e3'])} endpoint health >/dev/null 2>&1 || [ $i -ge 90 ]; do i=$((i+1)); sleep 1; done; ` +
      `for n in e1 e2 e3; do echo "STATUS $n $(${CTL} --endpoints=http://$n:2379 endpoint status -w json)"; done; ` +
      `${putGet(['e1', 'e2', 'e3'], 'one')}; echo PHASE1; while [ ! -e ${phase2} ]; do sleep 0.2; done; ` +
      `i=0; until ${CTL} --endpoints=$(cat ${phase2}) put k-after v-after >/dev/null 2>&1 || [ $i -ge 30 ]; do i=$((i+1)); sleep 1; done; ` +
      `for n in $(tr ',' ' ' < ${phase2} | sed 's|http://||g; s|:2379||g'); do echo "AFTER $n $(${CTL} --endpoints=http://$n:2379 get --print-value-only k-after) $(${CTL} --endpoints=http://$n:2379 get --print-value-only k-one-e1)"; done; echo PHASE2; ` +
      `while [ ! -e "$STOP" ]; do sleep 0.2; done`,
  ];
  const forced = { env: { BOXER_INTERCEPT: 'seccomp' } };
  try {
    await net.startSeed();
    const members = Object.entries(ETCD_NODES).map(([name, node]) => net.member(node, name, N, member(name), forced));
    const cli = net.member('fsa', 'cli', N, client, forced);
    await net.waitFor(cli, /PHASE1/, 240_000);
    // endpoint status: each member's id and the leader it follows; all three agree on one of them.
    const ids: Record<string, string> = {};
    const leaders = new Set<string>();
    for (const n of ['e1', 'e2', 'e3']) {
      const line = new RegExp(`STATUS ${n} (.*)\\n`).exec(cli.out());
      // Member ids are 64-bit: read them as digits, not through JSON numbers.
      const id = /"member_id":(\d+)/.exec(line?.[1] ?? '');
      const follows = /"leader":(\d+)/.exec(line?.[1] ?? '');
      t.truthy(id && follows, `endpoint status of ${n}: ${line?.[1]}`);
      ids[n] = id?.[1] ?? '';
      leaders.add(follows?.[1] ?? '');
    }
    t.is(leaders.size, 1, 'the three members follow one leader');
    const leader = Object.keys(ids).find((n) => leaders.has(ids[n]));
    t.truthy(leader, `the leader is one of the members: ${JSON.stringify(ids)} ${[...leaders]}`);
    for (const n of ['e1', 'e2', 'e3']) t.regex(cli.out(), new RegExp(`GET one ${n} v-one-${n}\\n`), `put/get through ${n}'s endpoint`);
    // Kill the leader's etcd: the other two keep a quorum.
    fs.writeFileSync(kill(leader!), '');
    await net.waitFor(members.find((m) => m.name === leader)!, /KILLED/);
    const left = ['e1', 'e2', 'e3'].filter((n) => n !== leader);
    fs.writeFileSync(phase2, eps(left));
    await net.waitFor(cli, /PHASE2/, 120_000);
    for (const n of left) t.regex(cli.out(), new RegExp(`AFTER ${n} v-after v-one-e1\\n`), `after the leader died, ${n} serves a new write and the old data`);
  } catch (e) {
    for (const m of net.members) t.log(`--- ${m.name} on ${m.node}:\n${m.out().slice(-6000)}\n${m.err().slice(-3000)}`);
    throw e;
  } finally {
    await net.stop();
    for (const n of Object.keys(ETCD_NODES)) fs.rmSync(kill(n), { force: true });
    fs.rmSync(phase2, { force: true });
  }
});

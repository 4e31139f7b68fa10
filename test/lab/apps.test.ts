/**
 * Real distributed programs from Debian, unmodified, on functions behind different NATs:
 *  - a Redis Cluster of three masters (port-preserving, port-translating and LAN-side NATs) created with
 *    `redis-cli --cluster create` on virtual addresses, serving writes and reads from a public VM and from a
 *    function behind a port-randomizing NAT (relayed);
 *  - nginx on a public VM with `proxy_pass` to an upstream named by a service, provided by two functions.
 */
import { labTest } from '../lab/helpers';
import { LabNet, PROGRAMS } from './labnet';

const lt = labTest();
const wait = `while [ ! -e "$STOP" ]; do sleep 0.2; done`;

lt.test('a Redis Cluster of three masters behind three NATs serves reads and writes from any member', async (t, lab) => {
  t.timeout(6 * 60_000);
  const net = new LabNet(lab);
  const N = 5;
  const env = { CREATOR: 'r1', MASTERS: 'r1 r2 r3', FIRST: 'r2', SECOND: 'r3' };
  try {
    await net.startSeed();
    const r1 = net.member('fp', 'r1', N, ['sh', `${PROGRAMS}/redis-member.sh`], { env });
    net.member('fta', 'r2', N, ['sh', `${PROGRAMS}/redis-member.sh`], { env });
    net.member('fla', 'r3', N, ['sh', `${PROGRAMS}/redis-member.sh`], { env });
    const fromVm = net.member('vm1', 'rc1', N, ['sh', `${PROGRAMS}/redis-client.sh`], { env });
    const fromRandom = net.member('fr', 'rc2', N, ['sh', `${PROGRAMS}/redis-client.sh`], { env: { ...env, FIRST: 'r3', SECOND: 'r1' } });
    const created = await net.waitFor(r1, /^(CREATED|CREATE_FAILED)$/m);
    t.is(created[1], 'CREATED', r1.out());
    for (const c of [fromVm, fromRandom]) {
      t.is((await net.waitFor(c, /REDIS_OK (\d+)\/10/))[1], '10', `${c.name}: ${c.out()}`);
      t.regex(c.out(), /cluster_state:ok/);
      t.regex(c.out(), /cluster_known_nodes:3/);
      // Every node is known by its virtual address.
      await net.waitFor(c, /^NODE .*\n.*NODE .*\n.*NODE /m);
      const nodes = [...c.out().matchAll(/^NODE (\S+)/gm)].map((m) => m[1]);
      t.is(nodes.length, 3);
      for (const n of nodes) t.regex(n, /^100\.96\.\d+\.\d+:6379@16379$/);
    }
  } finally {
    await net.stop();
  }
});

lt.test('nginx on a public VM proxies to backends in functions addressed by a service name', async (t, lab) => {
  t.timeout(4 * 60_000);
  const net = new LabNet(lab);
  const N = 4;
  try {
    await net.startSeed();
    const backend = (name: string) => ['sh', '-c', `mkdir -p www && echo ${name} > www/who && cd www && exec python3 -m http.server 8080`];
    net.member('fsa', 'b1', N, backend('b1'), { services: ['backend'] });
    net.member('ftb', 'b2', N, backend('b2'), { services: ['backend'] });
    // nginx resolves the service when it starts: start it once both backends are members (the barrier).
    const front = net.member('vm1', 'front', N, ['sh', `${PROGRAMS}/nginx-front.sh`], { env: { SERVICE: 'backend' } });
    const client = net.member('fp', 'client', N, [
      'sh',
      '-c',
      `sleep 2; for i in 1 2 3 4 5 6 7 8; do curl -sS --retry 10 --retry-connrefused --retry-delay 1 --max-time 20 http://front:8000/who; done | sort | uniq -c | awk '{print "WHO", $2, $1}'; echo CLIENT_DONE; ${wait}`,
    ]);
    await net.waitFor(front, /NGINX_STARTED/);
    await net.waitFor(client, /CLIENT_DONE/);
    const who = Object.fromEntries([...client.out().matchAll(/^WHO (\S+) (\d+)$/gm)].map((m) => [m[1], Number(m[2])]));
    t.deepEqual(Object.keys(who).sort(), ['b1', 'b2'], `both backends answered: ${client.out()}\n${front.err()}`);
    t.is(who.b1 + who.b2, 8);
  } finally {
    await net.stop();
  }
});

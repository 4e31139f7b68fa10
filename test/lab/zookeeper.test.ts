/**
 * Programs that ask the system who they are, in the lab under `boxer run`, behind real NATs:
 *  - `hostname`, `hostname -I`, python and Java see the member's name and virtual address, and a server that
 *    binds to the address its own host name resolves to is reached by name from another member;
 *  - a ZooKeeper ensemble (Debian's zookeeper, unmodified) of three functions behind three different NATs
 *    (port-preserving, port-translating, port-randomizing), configured from the member file (myid = member id,
 *    server.ID=NAME:2888:3888), reaches quorum and serves a client (four-letter words and zkCli.sh); one
 *    member (the leader, so the rest must elect another) killed with SIGKILL (agent and JVM, no leave) and
 *    restarted under its name gets the same id and address at once and rejoins: the ensemble has its quorum
 *    again and still serves the data written before.
 */
import fs from 'node:fs';
import { labTest } from './helpers';
import { LabNet, PROGRAMS, type Member } from './labnet';

const lt = labTest();
const wait = `while [ ! -e "$STOP" ]; do sleep 0.2; done`;

function field(m: Member, re: RegExp): string {
  const hit = re.exec(m.out());
  if (!hit) throw new Error(`${m.name}: no ${re} in\n${m.out()}\n${m.err()}`);
  return hit[1].trim();
}

lt.serial('who am I behind a NAT: host name, addresses, Java; a server bound to its own address is reached by name', async (t, lab) => {
  t.timeout(4 * 60_000);
  const net = new LabNet(lab);
  try {
    await net.startSeed();
    const server = `import socket, os
a = socket.gethostbyname(socket.gethostname())
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((a, 9000)); s.listen(1)
print('BOUND', a, flush=True)
open(os.environ['STOP'] + '-bound', 'w').close()
c, peer = s.accept(); c.sendall(('hello from %s at %s\\n' % (socket.gethostname(), a)).encode()); c.close()
print('SERVED', peer[0], flush=True)`;
    // The client starts once the server listens (a file beside the stop file): a connection tried before that is
    // refused, and a first connection after many refusals can be reset (a known bug, see the closing note of
    // 2026-12-02); this test is about who the server thinks it is, not about that race.
    const client = `import socket, time, os
for i in range(240):
    if os.path.exists(os.environ['STOP'] + '-bound'): break
    time.sleep(0.5)
for i in range(60):
    try:
        c = socket.create_connection(('alpha', 9000), timeout=5); break
    except OSError as e:
        print('TRY', i, e.errno, e, flush=True); time.sleep(0.5)
print('GOT', c.recv(200).decode().strip(), flush=True)`;
    const alpha = net.member('fp', 'alpha', 2, ['sh', '-c', `sh ${PROGRAMS}/whoami.sh; python3 -c "$SERVER"; ${wait}`], { env: { SERVER: server } });
    const beta = net.member('vm1', 'beta', 2, ['sh', '-c', `NOJAVA=1 sh ${PROGRAMS}/whoami.sh; python3 -c "$CLIENT"; ${wait}`], { env: { CLIENT: client } });
    // On a timeout, both sides' output: the client's attempts say why the server was not reached.
    await net.waitFor(alpha, /^SERVED /m).catch((e: Error) => {
      throw new Error(`${e.message}\n--- beta (the client):\n${beta.out()}\n${beta.err()}`);
    });
    await net.waitFor(beta, /^GOT /m);
    t.log(`the client's failed attempts before it got through: ${beta.out().split('\n').filter((l) => l.startsWith('TRY ')).join('; ') || 'none'}`);
    const addr = field(alpha, /^BOUND (\S+)$/m);
    t.regex(addr, /^100\.96\.\d+\.\d+$/);
    t.is(field(alpha, /^HOSTNAME (.*)$/m), 'alpha');
    t.is(field(alpha, /^UNAME_N (.*)$/m), 'alpha');
    t.is(field(alpha, /^HOSTNAME_I (.*)$/m).split(/\s+/)[0], addr, 'hostname -I starts with the virtual address');
    t.is(field(alpha, /^PY (.*)$/m), `alpha alpha ${addr}`);
    if (/^JAVA_NONE/m.test(alpha.out())) t.log('Java not checked: no JDK in this lab (.ci/setup installs one)');
    else {
      t.is(field(alpha, /^JAVA_LOCALHOST (.*)$/m), `alpha ${addr}`, 'InetAddress.getLocalHost()');
      t.is(field(alpha, /^JAVA_CANONICAL (.*)$/m), 'alpha');
    }
    t.is(field(beta, /^HOSTNAME (.*)$/m), 'beta');
    t.is(field(beta, /^GOT (.*)$/m), `hello from alpha at ${addr}`);
    t.is(field(alpha, /^SERVED (\S+)$/m), field(beta, /^PY beta beta (\S+)$/m), 'the server sees the client by its virtual address');
  } finally {
    await net.stop();
  }
});

lt.serial('a ZooKeeper ensemble of three functions behind three NATs: quorum, a client, a SIGKILLed member rejoins', async (t, lab) => {
  t.timeout(6 * 60_000);
  const net = new LabNet(lab);
  const phase = `${net.stopFile}-phase`;
  const env = { ENSEMBLE: 'zk1 zk2 zk3', PHASE: phase, ZK_LOG_LEVEL: process.env.ZK_LOG_LEVEL ?? 'warn' };
  const zk = (node: string, name: string) => net.member(node, name, 4, ['sh', `${PROGRAMS}/zk-member.sh`], { env });
  try {
    const t0 = Date.now();
    await net.startSeed();
    const nodes: Record<string, string> = { zk1: 'fp', zk2: 'fta', zk3: 'fr' };
    const members: Record<string, Member> = Object.fromEntries(Object.entries(nodes).map(([name, node]) => [name, zk(node, name)]));
    const client = net.member('vm1', 'client', 4, ['python3', `${PROGRAMS}/zk-client.py`], { env });
    await net.waitFor(client, /^ROUND 1 DONE$/m);
    const quorum1 = field(client, /^ROUND 1 QUORUM (.*)$/m);
    t.log(`round 1 (seed start to quorum, write and read): ${((Date.now() - t0) / 1000).toFixed(1)} s: ${quorum1}`);
    t.deepEqual(modes(quorum1), ['follower', 'follower', 'leader'], `${quorum1}\n${members.zk1.out()}`);
    t.is(field(client, /^ROUND 1 CREATE (.*)$/m), 'rc=0 True', client.out());
    t.is(field(client, /^ROUND 1 GET (.*)$/m), 'rc=0 True', client.out());

    // The leader dies: its agent and its JVM, SIGKILL, no leave. Then it starts again under its name on its host.
    const leader = /(zk\d)=leader/.exec(quorum1)![1];
    const line = new RegExp(`^ZK_MEMBER ${leader} id=(\\d+) addr=(\\S+) pid=(\\d+)`, 'm');
    const before = line.exec(members[leader].out())!;
    process.kill(Number(before[3]), 'SIGKILL');
    members[leader].child.kill('SIGKILL');
    await net.exited(members[leader]);
    const t1 = Date.now();
    const again = zk(nodes[leader], leader);
    const after = (await net.waitFor(again, line))!;
    t.log(`restarted ${leader} (the leader, behind ${nodes[leader]}) had its id back ${Date.now() - t1} ms after it was started (process start and join included)`);
    t.is(after[1], before[1], 'same member id (so the same myid)');
    t.is(after[2], before[2], 'same virtual address');
    fs.writeFileSync(`${phase}.2`, '');
    await net.waitFor(client, /^ROUND 2 DONE$/m);
    const quorum2 = field(client, /^ROUND 2 QUORUM (.*)$/m);
    t.log(`round 2 (restart to quorum and read): ${((Date.now() - t1) / 1000).toFixed(1)} s: ${quorum2}`);
    t.deepEqual(modes(quorum2), ['follower', 'follower', 'leader'], `${quorum2}\n${again.out()}\n${again.err()}`);
    t.is(field(client, /^ROUND 2 GET (.*)$/m), 'rc=0 True', client.out());
  } finally {
    await net.stop();
    for (const f of [`${phase}.2`]) fs.rmSync(f, { force: true });
    if (process.env.ZK_LOG_DUMP) for (const m of net.members) fs.writeFileSync(`${process.env.ZK_LOG_DUMP}-${m.name}-${m.child.pid}.log`, m.out() + m.err());
  }
});

function modes(quorum: string): string[] {
  return quorum
    .split(/\s+/)
    .filter((x) => x.includes('='))
    .map((x) => x.split('=')[1])
    .sort();
}

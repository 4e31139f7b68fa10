// The core as a user runs it: a real seed and real agents as separate processes on loopback.
import test from 'ava';
import fs from 'node:fs';
import net from 'node:net';
import { boxer, sandbox, startSeed, until } from '../support/procs';
import { EXIT } from '../../src/util/errors';

// Each member prints its environment and its member file once the barrier is released, then waits for a
// file to appear (so the test decides when it ends).
const MEMBER_SCRIPT = `echo "id=$BOXER_NODE_ID addr=$BOXER_ADDR name=$BOXER_NAME seed=$BOXER_SEED agent=$BOXER_AGENT secret=\${BOXER_SECRET:-none}"; cat "$BOXER_NODES_FILE"; echo END; while [ ! -e "$STOP" ]; do sleep 0.1; done`;

test('5 nodes with --nodes 5 get distinct ids and addresses and identical 5-line member files', async (t) => {
  const { env, tmp } = sandbox();
  const seed = await startSeed(env);
  const stop = `${tmp}/stop`;
  const members = [0, 1, 2, 3, 4].map((i) =>
    boxer(['run', '--seed', seed.addr, '--nodes', '5', ...(i === 0 ? ['--name', 'zk1'] : []), '--', 'sh', '-c', MEMBER_SCRIPT], { ...env, STOP: stop }),
  );
  try {
    await Promise.all(members.map((m) => m.waitFor(/END/)));
    const ids = members.map((m) => Number(/id=(\d+)/.exec(m.out())![1]));
    const addrs = members.map((m) => /addr=(\S+)/.exec(m.out())![1]);
    t.is(new Set(ids).size, 5);
    t.deepEqual([...ids].sort(), [1, 2, 3, 4, 5]);
    t.is(new Set(addrs).size, 5);
    t.true(members[0].out().includes('name=zk1'));
    t.true(members.every((m) => m.out().includes('secret=none')), 'BOXER_SECRET is removed from the environment');
    const files = members.map((m) => /END/.exec(m.out()) && m.out().split('\n').slice(1, 6).join('\n'));
    t.true(files.every((f) => f === files[0]), 'identical member files');
    const lines = files[0]!.split('\n');
    t.is(lines.length, 5);
    lines.forEach((l, i) => t.regex(l, new RegExp(`^${i + 1} 100\\.96\\.\\d+\\.\\d+ \\S+$`)));
    // Progress was shown while waiting.
    t.true(members.some((m) => /waiting for members \d\/5/.test(m.err())));
  } finally {
    fs.writeFileSync(stop, '');
    await Promise.all(members.map((m) => m.exited));
    seed.proc.child.kill('SIGTERM');
    await seed.proc.exited;
  }
  for (const m of members) t.is((await m.exited).code, 0);
});

test('a wrong secret is refused on both sides with a clear error and its own exit status', async (t) => {
  const { env } = sandbox();
  const seed = await startSeed(env);
  const bad = boxer(['run', '--seed', seed.addr, '--', 'true'], { ...env, BOXER_SECRET: 'some other secret entirely' });
  const r = await bad.exited;
  t.is(r.code, EXIT.WRONG_SECRET);
  t.regex(bad.err(), /wrong network secret/);
  await seed.proc.waitFor(/does not know the network secret/, 'err');
  seed.proc.child.kill('SIGTERM');
  await seed.proc.exited;
});

test('no secret, short secret, unreachable seed: distinct errors saying what to do', async (t) => {
  const { env } = sandbox();
  // Port 1 (tcpmux): nothing listens there, and no ephemeral port is ever it, so the connect is refused for sure
  // (a free port found and closed can be taken by another test's listener before the agent dials it).
  const port = 1;
  const none = boxer(['run', '--seed', `127.0.0.1:${port}`, '--', 'true'], { ...env, BOXER_SECRET: '' });
  t.is((await none.exited).code, EXIT.USAGE);
  t.regex(none.err(), /no network secret/);
  const short = boxer(['run', '--seed', `127.0.0.1:${port}`, '--', 'true'], { ...env, BOXER_SECRET: 'short' });
  t.is((await short.exited).code, EXIT.USAGE);
  t.regex(short.err(), /at least 16/);
  const unreachable = boxer(['run', '--seed', `127.0.0.1:${port}`, '--join-timeout', '1', '--', 'true'], env);
  t.is((await unreachable.exited).code, EXIT.SEED_UNREACHABLE);
  t.regex(unreachable.err(), new RegExp(`cannot reach the seed at 127.0.0.1:${port}.*ECONNREFUSED`));
});

test('exit status of CMD is passed through, 128+N for a signal', async (t) => {
  const { env } = sandbox();
  const seed = await startSeed(env);
  const a = boxer(['run', '--seed', seed.addr, '--', 'sh', '-c', 'exit 7'], env);
  t.is((await a.exited).code, 7);
  const b = boxer(['run', '--seed', seed.addr, '--', 'sh', '-c', 'kill -TERM $$'], env);
  t.is((await b.exited).code, 128 + 15);
  seed.proc.child.kill('SIGTERM');
  await seed.proc.exited;
});

test('a killed member disappears from the others\' member files; a leaving one at once', async (t) => {
  const { env, tmp } = sandbox();
  const seed = await startSeed(env);
  const stop = `${tmp}/stop`;
  const script = `echo "file=$BOXER_NODES_FILE"; while [ ! -e "$STOP" ]; do sleep 0.1; done`;
  const ms = [0, 1, 2].map(() => boxer(['run', '--seed', seed.addr, '--nodes', '3', '--', 'sh', '-c', script], { ...env, STOP: stop }));
  try {
    const files = await Promise.all(ms.map(async (m) => (await m.waitFor(/file=(\S+)/))[1]));
    const lines = () => fs.readFileSync(files[0], 'utf8').trim().split('\n').length;
    t.is(lines(), 3);
    ms[2].child.kill('SIGKILL'); // the agent dies without leaving
    await until(() => lines() === 2, 20_000, 'the killed member to disappear');
    t.pass();
  } finally {
    fs.writeFileSync(stop, '');
    await Promise.all(ms.map((m) => m.exited));
    seed.proc.child.kill('SIGTERM');
    await seed.proc.exited;
  }
});

test('malformed, oversized and garbage connections do not stop the seed', async (t) => {
  const { env } = sandbox();
  const seed = await startSeed(env, ['-v']);
  const [host, port] = seed.addr.split(':');
  const send = (bytes: Buffer) =>
    new Promise<void>((resolve) => {
      const s = net.connect(Number(port), host, () => s.write(bytes));
      s.on('error', () => resolve());
      s.on('close', () => resolve());
      setTimeout(() => s.destroy(), 2000);
    });
  const oversized = Buffer.alloc(4);
  oversized.writeUInt32BE(50_000_000);
  await send(oversized);
  await send(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
  const bogus = Buffer.alloc(4 + 53);
  bogus.writeUInt32BE(53);
  bogus[4] = 1;
  await send(bogus);
  await seed.proc.waitFor(/exceeds the limit/, 'err');
  // The seed still serves members.
  const m = boxer(['run', '--seed', seed.addr, '--', 'sh', '-c', 'echo id=$BOXER_NODE_ID'], env);
  t.is((await m.exited).code, 0);
  t.regex(m.out(), /id=1/);
  t.is(seed.proc.child.exitCode, null);
  seed.proc.child.kill('SIGTERM');
  await seed.proc.exited;
});

test('boxer status lists the members; --json for machines', async (t) => {
  const { env } = sandbox();
  const seed = await startSeed(env);
  const m = boxer(['run', '--seed', seed.addr, '--name', 'alpha', '--', 'sh', '-c', 'node "$BOXER_CLI" status; node "$BOXER_CLI" status --json'], {
    ...env,
    BOXER_CLI: require.resolve('../../../bin/boxer'),
  });
  t.is((await m.exited).code, 0, m.err());
  t.regex(m.out(), /ID\s+NAME\s+ADDRESS\s+EXTERNAL\s+NAT\s+LINK/);
  t.regex(m.out(), /1\s+alpha\s+100\.96\.0\.1\s+127\.0\.0\.1:\d+/);
  const json = JSON.parse(m.out().slice(m.out().indexOf('{')));
  t.is(json.self.name, 'alpha');
  t.is(json.members.length, 1);
  seed.proc.child.kill('SIGTERM');
  await seed.proc.exited;
});

test('a seed restarted with the same secret and address relearns the members and reuses no id', async (t) => {
  const { env, tmp } = sandbox();
  const seed = await startSeed(env);
  const stop = `${tmp}/stop`;
  const script = `echo "id=$BOXER_NODE_ID file=$BOXER_NODES_FILE"; while [ ! -e "$STOP" ]; do sleep 0.1; done`;
  const a = boxer(['run', '--seed', seed.addr, '--', 'sh', '-c', script], { ...env, STOP: stop });
  const b = boxer(['run', '--seed', seed.addr, '--', 'sh', '-c', script], { ...env, STOP: stop });
  try {
    await a.waitFor(/id=\d+ file=/);
    await b.waitFor(/id=\d+ file=/);
    seed.proc.child.kill('SIGKILL');
    await seed.proc.exited;
    const seed2 = boxer(['seed', '--listen', seed.addr], env);
    await seed2.waitFor(/listening on/);
    const c = boxer(['run', '--seed', seed.addr, '--', 'sh', '-c', 'echo id=$BOXER_NODE_ID; cat $BOXER_NODES_FILE'], env);
    t.is((await c.exited).code, 0, c.err());
    t.regex(c.out(), /^id=3$/m);
    t.regex(c.out(), /^1 100\.96\.0\.1 node-1$/m);
    t.regex(c.out(), /^2 100\.96\.0\.2 node-2$/m);
    seed2.child.kill('SIGTERM');
    await seed2.exited;
  } finally {
    fs.writeFileSync(stop, '');
    await Promise.all([a.exited, b.exited]);
  }
});

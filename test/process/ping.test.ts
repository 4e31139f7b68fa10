// `boxer ping` and `boxer status` with real processes on loopback: path, endpoint, RTT, exit statuses.
import test from 'ava';
import { boxer, sandbox, startSeed, until } from '../support/procs';
import { EXIT } from '../../src/util/errors';

const SCRIPT = 'echo "agent=$BOXER_AGENT"; sleep 60';

test('boxer ping opens a direct link on loopback; status shows path, endpoint and RTT; unreachable exits 79', async (t) => {
  t.timeout(90_000);
  const { env } = sandbox();
  const seed = await startSeed(env);
  const a = boxer(['run', '--seed', seed.addr, '--name', 'a', '--', 'sh', '-c', SCRIPT], env);
  const b = boxer(['run', '--seed', seed.addr, '--name', 'b', '--nodes', '2', '--', 'sh', '-c', SCRIPT], env);
  try {
    const agentA = (await a.waitFor(/agent=(\S+)/))[1];
    await b.waitFor(/agent=(\S+)/);
    const ping = boxer(['ping', 'b', '--agent', agentA, '--json'], env);
    const { code } = await ping.exited;
    t.is(code, 0, ping.err());
    const reply = JSON.parse(ping.out()) as { ok: boolean; path: string; endpoint: string; rttMs: number };
    t.is(reply.path, 'direct');
    t.regex(reply.endpoint, /^127\.0\.0\.1:\d+$/);
    t.true(reply.rttMs >= 0);
    const human = boxer(['ping', 'b', '--agent', agentA], env);
    await human.exited;
    t.regex(human.out(), /b \(id \d+\): path direct, endpoint 127\.0\.0\.1:\d+, rtt \d+ ms/);

    const status = boxer(['status', '--agent', agentA], env);
    await status.exited;
    t.regex(status.out(), /LINK\s+ENDPOINT\s+RTT/);
    t.regex(status.out(), /b\s+\S+\s+\S+\s+open\s+direct\s+127\.0\.0\.1:\d+\s+\d+ ms/, status.out());

    const unknown = boxer(['ping', 'nobody', '--agent', agentA], env);
    t.is((await unknown.exited).code, EXIT.UNREACHABLE);
    t.regex(unknown.err(), /no member named "nobody"/);

    b.child.kill('SIGKILL'); // its link dies; then the seed declares it dead
    await until(async () => {
      const p = boxer(['ping', 'b', '--agent', agentA, '--json'], env);
      return (await p.exited).code === EXIT.UNREACHABLE;
    }, 30_000, 'ping of a dead member to fail with 79');
    t.pass();
  } finally {
    a.child.kill('SIGTERM');
    b.child.kill('SIGKILL');
    seed.proc.child.kill('SIGTERM');
  }
});

/**
 * Services that take load (src/vnet/services.ts, drain.ts): a client on a public VM resolves the service
 * `api` once, when one member provides it, then connects to it again and again from 4 threads. A second member
 * that joins the service later gets connections (the first soon after it starts), connections are spread
 * over both, and when a member leaves (SIGTERM to `boxer run`, which drains: out of the service first, then
 * the program's open requests finish, then it stops) not one connection fails and none reaches it after it
 * left.
 */
import path from 'node:path';
import { labTest } from './helpers';
import { LabNet, PROGRAMS } from './labnet';

const lt = labTest();
const PORT = 8400;
const WHO = path.join(PROGRAMS, 'who_server.py');
const CLIENT = path.join(PROGRAMS, 'svc_client.py');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

lt.test('a service address reaches a member that joins later, spreads connections, and a draining member drops none', async (t, lab) => {
  t.timeout(4 * 60_000);
  const net = new LabNet(lab);
  // Each request takes 200 ms, so that some are in flight whenever a member leaves.
  const server = (name: string) => ['python3', WHO, name, String(PORT)];
  const env = { DELAY_MS: '200' };
  try {
    await net.startSeed();
    const b1 = net.member('fsa', 'b1', 1, server('b1'), { services: ['api'], env });
    await net.waitFor(b1, /START/);
    const front = net.member('vm1', 'front', 1, ['python3', CLIENT, 'api', String(PORT), '60'], { env: { WORKERS: '4', PAUSE_MS: '20' } });
    await net.waitFor(front, /^R \d+ b1$/m);
    const b2 = net.member('fp', 'b2', 1, server('b2'), { services: ['api'], env, args: ['--drain-grace', '3'] });
    const started = Number((await net.waitFor(b2, /START (\d+)/))[1]);
    const first = Number((await net.waitFor(front, /^R (\d+) b2$/m))[1]);
    t.true(first - started < 5_000, `b2's first request came ${first - started} ms after its program started`);
    await sleep(1_500);
    b2.child.kill('SIGTERM');
    t.is(await net.exited(b2, 30_000), 0, 'the program stopped on SIGTERM after the drain (its exit status)');
    const left = Date.now();
    await sleep(1_500);
    const answers = [...front.out().matchAll(/^R (\d+) (\S+)$/gm)].map((m) => ({ at: Number(m[1]), who: m[2] }));
    const failures = [...front.out().matchAll(/^F \d+ .*$/gm)].map((m) => m[0]);
    t.deepEqual(failures, [], 'no connection failed');
    t.true(answers.filter((a) => a.who === 'b2').length >= 5, 'b2 took a share of the load');
    t.deepEqual(answers.filter((a) => a.who === 'b2' && a.at > left), [], 'none reached b2 after it left');
    t.true(answers.filter((a) => a.who === 'b1' && a.at > left).length > 0, 'b1 serves on');
  } finally {
    await net.stop();
  }
});

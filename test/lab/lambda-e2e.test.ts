// Boxer on "AWS Lambda", end to end in the lab, every piece real but AWS itself: `boxer lambda package` with an
// --include'd unmodified program, `boxer lambda deploy` and `boxer lambda run --nodes 5` on a user's machine
// (vm2) with the real AWS SDK against the local AWS endpoint, whose Invoke starts the handler of the deployed zip
// through the Lambda Runtime API in five function nodes behind five different NATs (test/support/lambda-lab.ts).
// The functions read the network secret from Secrets Manager (the endpoint) through their NATs, join, and run a
// program that talks to every other member by name; one is cut by its deadline and the others see it leave at
// once (not after the seed's 4 s heartbeat timeout). Then `boxer lambda destroy`.
import test from 'ava';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { labTest } from './helpers';
import { LambdaLab, BOXER } from '../support/lambda-lab';
import { runtimeUnavailable } from '../support/lambda-runtime';
import { DEAD_AFTER_MS } from '../../src/constants';
import { EXIT } from '../../src/util/errors';

const APP = path.resolve(__dirname, '../../../test/lab/lambda-app');
/** Five NAT kinds: preserving, shared preserving with hairpin, random (relay only), translating, LAN. */
const NODES = ['fp', 'fsa', 'fr', 'fta', 'fla'];
const ROLE = 'arn:aws:iam::123456789012:role/boxer-function';
/**
 * The function's timeout and how long before it a member still running is stopped: 25 s after its start. The
 * others start OTHERS_QUEUED_MS later, take a few seconds to join and talk (~5 s on this loaded machine), wait
 * for m-4 to be cut, and have 8 s before their own deadline.
 */
const TIMEOUT_S = 50;
const LEAVE_BEFORE_S = 25;
/**
 * Lambda's asynchronous queue starts the other four this much later than m-4 (the lab's Lambda holds their
 * events), so their deadlines come later: they are still running, waiting for m-4 to leave, when m-4 is cut.
 */
const OTHERS_QUEUED_MS = 8_000;

const noRuntime = runtimeUnavailable();
if (noRuntime) console.log(`lambda end-to-end test not run: ${noRuntime}`);
const lt = labTest();
const register = noRuntime ? (title: string) => test.skip(title, () => undefined) : lt.test;

register('package, deploy, run 5 functions behind 5 NATs that talk by name; one cut by its deadline leaves at once; destroy', async (t, lab) => {
  const ll = new LambdaLab(lab, NODES, (index) => (index === 4 ? 0 : OTHERS_QUEUED_MS));
  t.teardown(() => ll.close());
  await ll.start();

  const zip = path.join(ll.dir, 'boxer.zip');
  const pkg = execFileSync(process.execPath, [BOXER, 'lambda', 'package', '--out', zip, '--include', APP], { encoding: 'utf8', timeout: 120_000 });
  t.log(pkg.trim().split('\n').slice(-1)[0]);

  const d = await ll.cli(['deploy', '--function', 'e2e', '--zip', zip, '--role', ROLE, '--secret-file', ll.secretFile, '--timeout', String(TIMEOUT_S)], 60_000);
  t.is(d.code, 0, d.out + d.err);
  // Five environments started ahead (provisioned concurrency), so the timing above does not hang on cold starts
  // of a loaded machine; cold starts are measured by the bench (bench/lambda.ts).
  await ll.prewarm('e2e', NODES.length);

  // The command runs in the package's app/, where --include put the directory under its own name.
  const cmd = ['lambda-app/peers.py'];
  const r = await ll.cli(['run', '--function', 'e2e', '--seed', ll.seedAddr, '--secret-file', ll.secretFile, '--nodes', '5', '--name', 'm', '--env', 'CUT=m-4', '--leave-before', String(LEAVE_BEFORE_S), '--join-timeout', '40', '--', ...cmd], 90_000);
  t.log(r.out);
  if (!/4\/5 members succeeded/.test(r.out)) {
    const t0 = Math.min(...ll.invocations.map((i) => i.acceptedAt));
    t.log(ll.invocations.map((i) => `${String(i.payload.index)} on ${i.node} started at +${i.startedAt - t0} ms`).join('\n'));
    t.log(ll.seedLog().map((e) => `${e.name} ${e.what} at +${e.at - t0} ms`).join('\n'));
    for (const [node, log] of ll.logs()) t.log(`--- ${node}\n${log.slice(-3000)}`);
  }
  t.is(r.code, EXIT.MEMBERS_FAILED, `one member is cut by its deadline: ${r.err}`);
  t.regex(r.out, /joined 5\/5/);
  for (const i of [0, 1, 2, 3]) t.regex(r.out, new RegExp(`member ${i} \\(m-${i}, 100\\.96\\.\\d+\\.\\d+\\): exited 0`));
  t.regex(r.out, /member 4 \(m-4, 100\.96\.\d+\.\d+\): cut by its deadline \(SIGTERM\)/);
  t.regex(r.out, /4\/5 members succeeded/);

  // Five invocations, one environment each, on five nodes behind five NATs; the handler's own results agree.
  await ll.ep.settled();
  t.is(ll.invocations.length, 5);
  t.deepEqual(ll.invocations.map((i) => i.node).sort(), [...NODES].sort());
  const results = ll.invocations.map((i) => i.result as { exitCode: number | null; reason: string; signal: string | null; name: string });
  t.deepEqual(results.filter((x) => x.reason === 'exited' && x.exitCode === 0).map((x) => x.name).sort(), ['m-0', 'm-1', 'm-2', 'm-3']);
  t.like(results.find((x) => x.name === 'm-4'), { reason: 'deadline', signal: 'SIGTERM' });

  // The others saw m-4 leave at once: each ended (it exits as soon as m-4 is gone from its member list) well
  // within the heartbeat timeout after the seed recorded m-4's leave.
  const log = ll.seedLog();
  const cutLeft = log.find((e) => e.name === 'm-4' && e.what === 'left');
  t.truthy(cutLeft, 'm-4 left (not died)');
  for (const i of [0, 1, 2, 3]) {
    const left = log.find((e) => e.name === `m-${i}` && e.what === 'left');
    t.truthy(left);
    t.true(left!.at - cutLeft!.at < DEAD_AFTER_MS / 2, `m-${i} ended ${left!.at - cutLeft!.at} ms after m-4 left`);
  }
  // And the programs themselves: each printed when m-4 vanished from its member list.
  const saw = [...ll.logs().values()].flatMap((l) => [...l.matchAll(/(m-\d) saw m-4 leave at (\d+)/g)].map((m) => ({ who: m[1], at: Number(m[2]) })));
  t.deepEqual(saw.map((x) => x.who).sort(), ['m-0', 'm-1', 'm-2', 'm-3']);
  for (const x of saw) t.true(x.at - cutLeft!.at < DEAD_AFTER_MS / 2, `${x.who} saw m-4 leave ${x.at - cutLeft!.at} ms after it left`);

  const x = await ll.cli(['destroy', '--function', 'e2e'], 30_000);
  t.is(x.code, 0, x.err);
  t.is(ll.ep.functions.size, 0);
  t.is(ll.ep.secrets.size, 0);
});

// `boxer lambda run` as a user runs it (bin/boxer, the real AWS SDK v3 with --endpoint-url, a real seed on
// loopback): what goes into each member's event, and every way a run fails before or without members, each
// with its message and exit status. Members that join and end are tested in the lab (test/lab/lambda-e2e).
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { boxer, sandbox, startSeed } from '../support/procs';
import { AwsEndpoint, TEST_ACCOUNT } from '../support/aws-endpoint';
import { EXIT } from '../../src/util/errors';

const ROLE = `arn:aws:iam::${TEST_ACCOUNT}:role/boxer-fn`;
const SECRET = 'the network secret of the run test';

async function cli(args: string[], env: NodeJS.ProcessEnv) {
  const p = boxer(['lambda', ...args], env);
  const { code } = await p.exited;
  return { code, out: p.out(), err: p.err() };
}

/**
 * An endpoint whose function fails at once on every event (as a function whose package does not load), so no
 * member ever joins; `deliveries` counts what Lambda delivered, retries included.
 */
async function deployed(t: { teardown(fn: () => Promise<void> | void): void }, deny: string[] = []) {
  const deliveries: string[] = [];
  const ep = new AwsEndpoint({
    settleMs: 100,
    deny,
    invoker: async (_fn, payload) => {
      deliveries.push(payload.toString());
      return { payload: Buffer.from('{"errorType":"Runtime.ImportModuleError","errorMessage":"no index.handler"}'), functionError: 'Unhandled' };
    },
  });
  await ep.start();
  t.teardown(() => ep.close());
  const { env, tmp } = sandbox(SECRET);
  const secretFile = path.join(tmp, 'net.key');
  fs.writeFileSync(secretFile, SECRET, { mode: 0o600 });
  const zip = path.join(tmp, 'pkg.zip');
  execFileSync('python3', ['-c', 'import sys,zipfile\nwith zipfile.ZipFile(sys.argv[1],"w") as z: z.writestr("index.js","")', zip]);
  const e = { ...env, ...ep.env() };
  const d = await cli(['deploy', '--function', 'net', '--endpoint-url', ep.url, '--zip', zip, '--role', ROLE, '--secret-file', secretFile], e);
  if (d.code !== 0) throw new Error(d.err);
  return { ep, env: e, secretFile, tmp, deliveries };
}

test('each member gets one event: the run id, its index, the command, the secret by reference; none joining: 83', async (t) => {
  const { ep, env, secretFile, deliveries } = await deployed(t);
  const seed = await startSeed(env);
  t.teardown(() => void seed.proc.child.kill('SIGTERM'));
  const run = await cli(['run', '--function', 'net', '--endpoint-url', ep.url, '--seed', seed.addr, '--secret-file', secretFile, '--nodes', '3', '--name', 'zk', '--env', 'A=1', '--leave-before', '5', '--join-timeout', '2', '--', 'app/start.sh', 'x y'], env);
  t.is(run.code, EXIT.MEMBERS_FAILED, run.err);
  const events = ep.lambda.events.map((e) => JSON.parse(e.payload.toString()));
  t.is(events.length, 3);
  const arn = ep.secrets.get('boxer/net')!.arn;
  const runId = events[0].run;
  t.regex(runId, /^[0-9a-f]{16}$/);
  t.deepEqual(
    events.sort((a, b) => a.index - b.index),
    [0, 1, 2].map((i) => ({ seed: seed.addr, nodes: 3, command: ['app/start.sh', 'x y'], name: `zk-${i}`, env: { A: '1' }, leaveBeforeMs: 5000, secret: { secretsManager: arn }, run: runId, index: i })),
  );
  t.false(ep.lambda.events.some((e) => e.payload.toString().includes(SECRET)), 'the secret is never in an event');
  await ep.settled();
  t.is(deliveries.length, 3, 'a failed event is not retried: deploy set MaximumRetryAttempts 0 (Lambda retries twice by default)');
  t.regex(run.out, /run [0-9a-f]{16}: invoking 3 × net/);
  for (const i of [0, 1, 2]) t.regex(run.out, new RegExp(`member ${i}: never joined \\(not within 2 s; its log: CloudWatch log group /aws/lambda/net\\)`));
  t.regex(run.out, /0\/3 members succeeded/);
  t.regex(run.err, /3 of 3 members did not exit 0/);
});

test('run stops before invoking when the seed is unreachable or the secret is not the deployed one', async (t) => {
  const { ep, env, secretFile, tmp } = await deployed(t);
  const args = ['run', '--function', 'net', '--endpoint-url', ep.url, '--nodes', '2', '--secret-file', secretFile];
  const dead = await cli([...args, '--seed', '127.0.0.1:1', '--', 'true'], env);
  t.is(dead.code, EXIT.SEED_UNREACHABLE, dead.err);
  t.regex(dead.err, /cannot reach the seed at 127\.0\.0\.1:1: ECONNREFUSED/);
  const other = path.join(tmp, 'other.key');
  fs.writeFileSync(other, 'another secret, not the deployed one', { mode: 0o600 });
  const wrong = await cli([...args.slice(0, -1), other, '--seed', '127.0.0.1:1', '--', 'true'], env);
  t.is(wrong.code, EXIT.WRONG_SECRET, wrong.err);
  t.regex(wrong.err, /deployed with another network secret/);
  const missing = await cli(['run', '--function', 'nope', '--endpoint-url', ep.url, '--nodes', '2', '--secret-file', secretFile, '--seed', '127.0.0.1:1', '--', 'true'], env);
  t.is(missing.code, EXIT.AWS, missing.err);
  t.regex(missing.err, /lambda:GetFunctionConfiguration on nope failed: ResourceNotFoundException \(HTTP 404\): Function not found/);
  const noCmd = await cli(['run', '--function', 'net', '--endpoint-url', ep.url, '--nodes', '2', '--seed', '127.0.0.1:1'], env);
  t.is(noCmd.code, EXIT.USAGE);
  t.regex(noCmd.err, /nothing to run/);
  t.is(ep.lambda.events.length, 0, 'nothing was invoked');
});

test('a denied Invoke stops the run with the permissions run needs (82)', async (t) => {
  const { ep, env, secretFile } = await deployed(t, ['lambda:InvokeFunction']);
  const seed = await startSeed(env);
  t.teardown(() => void seed.proc.child.kill('SIGTERM'));
  const run = await cli(['run', '--function', 'net', '--endpoint-url', ep.url, '--seed', seed.addr, '--secret-file', secretFile, '--nodes', '20', '--', 'true'], env);
  t.is(run.code, EXIT.AWS_DENIED, run.err);
  t.regex(run.err, /AWS denied lambda:InvokeFunction on net/);
  t.regex(run.err, /boxer lambda run` needs these IAM permissions for the caller:\n {2}lambda:GetFunctionConfiguration\n {2}lambda:InvokeFunction/);
  t.true(ep.calls.filter((c) => c.action === 'lambda:InvokeFunction').length <= 16, 'no invocation after the first refusals');
});

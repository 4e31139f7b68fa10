// The Lambda handler from the zip `boxer lambda package` builds, unpacked read-only and driven on loopback
// through AWS's Runtime Interface Emulator and runtime interface client (test/support/lambda-runtime.ts):
// results and errors, the network secret from the environment, from Secrets Manager and from SSM through the
// real AWS SDK against a local endpoint, and what the command may not see. The lab tests
// (test/lab/lambda-handler.test.ts) add NATs, the unprivileged user, the deadline and reuse.
import test from 'ava';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildPackage } from '../../src/lambda/package';
import { runtimeUnavailable, startEnvironment, unpack, type LambdaEnvironment } from '../support/lambda-runtime';
import { AwsEndpoint } from '../support/aws-endpoint';
import { startSeed, sandbox, type Proc } from '../support/procs';

const SECRET = 'lambda handler test secret, long enough';
const INVOKE_MS = 60_000;
const missing = runtimeUnavailable();
if (missing) console.log(`Lambda runtime tests not run: ${missing}`);
const maybe = missing ? test.skip : test.serial;

let code = '';
let work = '';
let seed: { proc: Proc; addr: string } | null = null;
const envs: LambdaEnvironment[] = [];
let endpoint: AwsEndpoint | null = null;

test.before(async () => {
  if (missing) return;
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'boxer-lambda-handler-'));
  fs.chmodSync(work, 0o755);
  const zip = path.join(work, 'boxer.zip');
  await buildPackage({ out: zip, arch: 'x86_64' });
  code = await unpack(zip, work);
  seed = await startSeed(sandbox(SECRET).env);
});

test.after.always(async () => {
  for (const e of envs) await e.close();
  await endpoint?.close();
  seed?.proc.child.kill('SIGTERM');
  if (work) {
    for (const d of fs.readdirSync(work)) fs.chmodSync(path.join(work, d), 0o755);
    fs.rmSync(work, { recursive: true, force: true, maxRetries: 3 });
  }
});

async function env(vars: Record<string, string>): Promise<LambdaEnvironment> {
  const e = await startEnvironment({ codeDir: code, env: vars, timeoutS: 60 });
  envs.push(e);
  return e;
}

maybe('the handler joins, runs the command and returns its status; a failing command is a result', async (t) => {
  const e = await env({ BOXER_SECRET: SECRET });
  const r = await e.invoke({ seed: seed!.addr, nodes: 1, command: ['sh', '-c', 'exit 3'], name: 'fn-a' }, { timeoutMs: INVOKE_MS });
  t.true(r.ok, JSON.stringify(r) + e.logs());
  const res = (r as { result: Record<string, unknown> }).result;
  t.like(res, { exitCode: 3, signal: null, reason: 'exited', name: 'fn-a' });
  t.regex(String(res.addr), /^100\.96\.\d+\.\d+$/);
  // A second invocation in the same (frozen, thawed) environment works; a command killed by a signal too.
  const r2 = await e.invoke({ seed: seed!.addr, nodes: 1, command: ['sh', '-c', 'kill -KILL $$'] }, { timeoutMs: INVOKE_MS });
  t.like(r2, { ok: true, result: { exitCode: null, signal: 'SIGKILL', reason: 'exited' } }, e.logs());
});

maybe('the command sees its place in the network, no AWS credentials, no secret, no HOME; the code is read-only (unless root)', async (t) => {
  const e = await env({ BOXER_SECRET: SECRET, AWS_ACCESS_KEY_ID: 'AKIAFUNCTIONROLE', AWS_SECRET_ACCESS_KEY: 'role-secret', AWS_SESSION_TOKEN: 'token' });
  const check = [
    'test -n "$BOXER_ADDR" -a -s "$BOXER_NODES_FILE" || exit 10',
    'test -z "$AWS_ACCESS_KEY_ID$AWS_SECRET_ACCESS_KEY$AWS_SESSION_TOKEN" || exit 11',
    'test -z "$BOXER_SECRET" || exit 12',
    'test -z "${HOME+set}" || exit 13',
    // (root writes anywhere: the lab test runs the function as its unprivileged user)
    'test "$(id -u)" = 0 || ! touch "$LAMBDA_TASK_ROOT/x" 2>/dev/null || exit 14',
    'touch "$TMPDIR/x" || exit 15',
    'test "$EXTRA" = yes || exit 16',
    'exit 0',
  ].join('; ');
  const r = await e.invoke({ seed: seed!.addr, nodes: 1, command: ['sh', '-c', check], env: { EXTRA: 'yes' } }, { timeoutMs: INVOKE_MS });
  t.like(r, { ok: true, result: { exitCode: 0 } }, e.logs());
  // awsCredentials: true hands them over.
  const r2 = await e.invoke({ seed: seed!.addr, nodes: 1, command: ['sh', '-c', 'test "$AWS_SESSION_TOKEN" = token'], awsCredentials: true }, { timeoutMs: INVOKE_MS });
  t.like(r2, { ok: true, result: { exitCode: 0 } }, e.logs());
  t.false(e.logs().includes(SECRET), 'the secret is never logged');
});

maybe('bad events and failures to join are invocation errors that say what to do', async (t) => {
  const e = await env({ BOXER_SECRET: SECRET });
  const bad = await e.invoke({ seed: seed!.addr, nodes: 1, command: 'not a list' }, { timeoutMs: INVOKE_MS });
  t.like(bad, { ok: false, error: { errorType: 'Boxer.BAD_EVENT' } });
  t.regex((bad as { error: { errorMessage: string } }).error.errorMessage, /command: expected a list/);
  const short = await e.invoke({ seed: seed!.addr, nodes: 1, command: ['true'], leaveBeforeMs: 60_000 }, { timeoutMs: INVOKE_MS });
  t.like(short, { ok: false, error: { errorType: 'Boxer.USAGE' } });
  t.regex((short as { error: { errorMessage: string } }).error.errorMessage, /raise the function's timeout or lower leaveBeforeMs/);
  const none = await env({});
  const nosecret = await none.invoke({ seed: seed!.addr, nodes: 1, command: ['true'] }, { timeoutMs: INVOKE_MS });
  t.like(nosecret, { ok: false, error: { errorType: 'Boxer.USAGE' } });
  t.regex((nosecret as { error: { errorMessage: string } }).error.errorMessage, /no network secret/);
});

maybe('the secret comes from Secrets Manager or SSM through the AWS SDK, with the function role credentials', async (t) => {
  endpoint = new AwsEndpoint();
  const url = await endpoint.start();
  endpoint.secrets.set('boxer-net', { arn: 'arn:aws:secretsmanager:eu-central-1:123456789012:secret:boxer-net-abc123', value: SECRET, tags: {} });
  endpoint.parameters.set('/boxer/net', { value: SECRET, type: 'SecureString' });
  const e = await env({ ...endpoint.env(), AWS_ENDPOINT_URL: url });
  const sm = await e.invoke({ seed: seed!.addr, nodes: 1, command: ['true'], secret: { secretsManager: 'arn:aws:secretsmanager:eu-central-1:123456789012:secret:boxer-net-abc123' } }, { timeoutMs: INVOKE_MS });
  t.like(sm, { ok: true, result: { exitCode: 0, reason: 'exited' } }, e.logs());
  const ssm = await e.invoke({ seed: seed!.addr, nodes: 1, command: ['true'], secret: { ssmParameter: '/boxer/net' } }, { timeoutMs: INVOKE_MS });
  t.like(ssm, { ok: true, result: { exitCode: 0 } }, e.logs());
  t.true(endpoint.calls.some((c) => c.action === 'secretsmanager:GetSecretValue'));
  t.true(endpoint.calls.some((c) => c.action === 'ssm:GetParameter'));
  const gone = await e.invoke({ seed: seed!.addr, nodes: 1, command: ['true'], secret: { secretsManager: 'no-such-secret' } }, { timeoutMs: INVOKE_MS });
  t.like(gone, { ok: false, error: { errorType: 'Boxer.USAGE' } });
  t.regex((gone as { error: { errorMessage: string } }).error.errorMessage, /cannot read the network secret from Secrets Manager \(no-such-secret\): ResourceNotFoundException/);
  t.false(e.logs().includes(SECRET), 'the secret is never logged');
});

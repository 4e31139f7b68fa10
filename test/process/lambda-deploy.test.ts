// `boxer lambda deploy` and `destroy` as a user runs them (bin/boxer, the real AWS SDK v3 with --endpoint-url)
// against a local endpoint that speaks the Lambda, Secrets Manager, SSM and IAM APIs and checks every request's
// SigV4 signature (test/support/aws-endpoint.ts).
import test from 'ava';
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { boxer, sandbox } from '../support/procs';
import { AwsEndpoint, TEST_ACCOUNT } from '../support/aws-endpoint';
import { EXIT } from '../../src/util/errors';
import { awsClients } from '../../src/lambda/aws';
import { deploy } from '../../src/lambda/deploy';

const ROLE = `arn:aws:iam::${TEST_ACCOUNT}:role/service/boxer-fn`;
const SECRET = 'the network secret of this test';

/** A small real zip (Python's zipfile), standing in for the package: deploy only uploads it. */
function makeZip(dir: string): string {
  const file = path.join(dir, 'pkg.zip');
  execFileSync('python3', ['-c', 'import sys,zipfile\nwith zipfile.ZipFile(sys.argv[1],"w") as z: z.writestr("index.js","exports.handler=async()=>1\\n")', file]);
  return file;
}

async function setup(opts: ConstructorParameters<typeof AwsEndpoint>[0] = {}) {
  const ep = new AwsEndpoint({ settleMs: 400, ...opts });
  await ep.start();
  const { env, tmp } = sandbox(SECRET);
  const secretFile = path.join(tmp, 'net.key');
  fs.writeFileSync(secretFile, SECRET + '\n', { mode: 0o600 });
  delete env.BOXER_SECRET;
  return { ep, env: { ...env, ...ep.env() }, tmp, secretFile, zip: makeZip(tmp) };
}

async function cli(args: string[], env: NodeJS.ProcessEnv) {
  const p = boxer(['lambda', ...args], env);
  const { code } = await p.exited;
  return { code, out: p.out(), err: p.err() };
}

test('deploy creates the function, its secret and role policy, no async retries; again updates; destroy removes all, twice', async (t) => {
  const { ep, env, secretFile, zip } = await setup();
  try {
    const args = ['--function', 'my-net', '--endpoint-url', ep.url];
    const d1 = await cli(['deploy', ...args, '--zip', zip, '--role', ROLE, '--secret-file', secretFile, '--arch', 'arm64', '--memory', '2048', '--timeout', '60'], env);
    t.is(d1.code, 0, d1.err);
    const fn = ep.functions.get('my-net')!;
    t.truthy(fn);
    t.like(fn.config, { Runtime: 'nodejs22.x', Handler: 'index.handler', Role: ROLE, MemorySize: 2048, Timeout: 60, Architectures: ['arm64'], EphemeralStorage: { Size: 512 }, State: 'Active' });
    t.deepEqual(fn.zip, fs.readFileSync(zip));
    t.like(fn.eventInvokeConfig, { MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 300 });
    const secret = ep.secrets.get('boxer/my-net')!;
    t.is(secret.value, SECRET, 'the secret is stored as the file holds it (without the newline)');
    const vars = fn.config.Environment!.Variables!;
    t.deepEqual(JSON.parse(vars.BOXER_SECRET_REF), { secretsManager: secret.arn });
    t.regex(vars.BOXER_NETWORK_ID, /^[0-9a-f]{16}$/);
    t.false(JSON.stringify(fn.config).includes(SECRET), 'the secret itself is not in the function configuration');
    const policy = JSON.parse(ep.rolePolicies.get('boxer-fn/boxer-my-net-secret')!);
    t.deepEqual(policy.Statement, [{ Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: secret.arn }]);
    t.regex(d1.out, /secret: created arn:aws:secretsmanager:/);
    t.regex(d1.out, /function my-net: created \(nodejs22\.x, arm64, 2048 MB, timeout 60 s/);
    t.regex(d1.out, /not retried/);
    // The SDK waited for the function to become Active before configuring it, and signed every call.
    const actions = ep.calls.map((c) => c.action);
    t.true(actions.indexOf('lambda:PutFunctionEventInvokeConfig') > actions.lastIndexOf('lambda:GetFunction'));
    t.true(ep.calls.every((c) => c.signedBy.accessKeyId === ep.env().AWS_ACCESS_KEY_ID && c.signedBy.region === 'eu-central-1'));
    t.deepEqual(new Set(ep.calls.map((c) => c.signedBy.service)), new Set(['lambda', 'secretsmanager', 'iam']));

    // Again: an update, with the same secret given a new value and the role kept.
    fs.writeFileSync(secretFile, 'a second network secret, rotated');
    const d2 = await cli(['deploy', ...args, '--zip', zip, '--secret-file', secretFile, '--memory', '1024'], env);
    t.is(d2.code, 0, d2.err);
    t.regex(d2.out, /secret: updated/);
    t.regex(d2.out, /function my-net: updated/);
    t.is(ep.functions.get('my-net')!.config.MemorySize, 1024);
    t.is(ep.secrets.get('boxer/my-net')!.value, 'a second network secret, rotated');
    t.is(ep.functions.get('my-net')!.config.Role, ROLE);

    const x1 = await cli(['destroy', ...args], env);
    t.is(x1.code, 0, x1.err);
    t.is(ep.functions.size, 0);
    t.is(ep.secrets.size, 0);
    t.is(ep.rolePolicies.size, 0);
    t.regex(x1.out, /asynchronous invocation settings removed/);
    t.regex(x1.out, /function my-net: removed/);
    t.regex(x1.out, /inline policy boxer-my-net-secret removed/);
    // Idempotent: nothing left, every step says so, and the role's policy is looked for with --role.
    const x2 = await cli(['destroy', ...args, '--role', ROLE], env);
    t.is(x2.code, 0, x2.err);
    t.regex(x2.out, /function my-net: already gone/);
    t.regex(x2.out, /boxer-my-net-secret already gone/);
    t.regex(x2.out, /secret boxer\/my-net: already gone/);
  } finally {
    await ep.close();
  }
});

test('deploy --secret-store ssm keeps the secret as a SecureString the role alone may read; destroy removes it', async (t) => {
  const { ep, env, secretFile, zip } = await setup();
  try {
    const args = ['--function', 'ssm-net', '--endpoint-url', ep.url];
    const d = await cli(['deploy', ...args, '--zip', zip, '--role', ROLE, '--secret-file', secretFile, '--secret-store', 'ssm'], env);
    t.is(d.code, 0, d.err);
    t.deepEqual(ep.parameters.get('/boxer/ssm-net'), { value: SECRET, type: 'SecureString' });
    const policy = JSON.parse(ep.rolePolicies.get('boxer-fn/boxer-ssm-net-secret')!);
    t.deepEqual(policy.Statement, [{ Effect: 'Allow', Action: 'ssm:GetParameter', Resource: `arn:aws:ssm:eu-central-1:${TEST_ACCOUNT}:parameter/boxer/ssm-net` }]);
    t.deepEqual(JSON.parse(ep.functions.get('ssm-net')!.config.Environment!.Variables!.BOXER_SECRET_REF), { ssmParameter: '/boxer/ssm-net' });
    const x = await cli(['destroy', ...args], env);
    t.is(x.code, 0, x.err);
    t.is(ep.parameters.size, 0);
    t.regex(x.out, /secret parameter \/boxer\/ssm-net: removed/);
  } finally {
    await ep.close();
  }
});

test('a denied call prints the IAM permissions the command needs and exits 82', async (t) => {
  const { ep, env, secretFile, zip } = await setup({ deny: ['iam:PutRolePolicy'] });
  try {
    const d = await cli(['deploy', '--function', 'f', '--endpoint-url', ep.url, '--zip', zip, '--role', ROLE, '--secret-file', secretFile], env);
    t.is(d.code, EXIT.AWS_DENIED);
    t.regex(d.err, /AWS denied iam:PutRolePolicy on boxer-fn: User: .* is not authorized/);
    for (const p of ['lambda:CreateFunction', 'lambda:PutFunctionEventInvokeConfig', 'iam:PassRole', 'iam:PutRolePolicy', 'secretsmanager:CreateSecret']) t.true(d.err.includes(p), p);
    t.is(ep.functions.size, 0, 'nothing after the denied step was done');
  } finally {
    await ep.close();
  }
  const ep2 = new AwsEndpoint({ deny: ['lambda:DeleteFunction'] });
  await ep2.start();
  try {
    const x = await cli(['destroy', '--function', 'f', '--endpoint-url', ep2.url], env);
    t.is(x.code, EXIT.AWS_DENIED);
    t.regex(x.err, /lambda:DeleteFunction/);
    t.regex(x.err, /boxer lambda destroy` needs these IAM permissions/);
  } finally {
    await ep2.close();
  }
});

test('requests signed with a wrong key are refused as AWS refuses them; no region or no secret: clear errors', async (t) => {
  const { ep, env, secretFile, zip } = await setup();
  try {
    const bad = await cli(['deploy', '--function', 'f', '--endpoint-url', ep.url, '--zip', zip, '--role', ROLE, '--secret-file', secretFile], { ...env, AWS_SECRET_ACCESS_KEY: 'not the key the endpoint knows' });
    t.is(bad.code, EXIT.AWS);
    t.regex(bad.err, /AWS did not accept the credentials for lambda:GetFunction on f: InvalidSignatureException/);
    t.is(ep.calls.length, 0);
    const noRegion = await cli(['deploy', '--function', 'f', '--endpoint-url', ep.url, '--zip', zip, '--role', ROLE, '--secret-file', secretFile], { ...env, AWS_REGION: '' });
    t.is(noRegion.code, EXIT.AWS);
    t.regex(noRegion.err, /no AWS region: give --region, set AWS_REGION/);
    const noSecret = await cli(['deploy', '--function', 'f', '--endpoint-url', ep.url, '--zip', zip, '--role', ROLE], env);
    t.is(noSecret.code, EXIT.USAGE);
    t.regex(noSecret.err, /give --secret-file/);
    const noRole = await cli(['deploy', '--function', 'f', '--endpoint-url', ep.url, '--zip', zip, '--secret-file', secretFile], env);
    t.is(noRole.code, EXIT.USAGE);
    t.regex(noRole.err, /does not exist yet: give its execution role with --role ARN/);
  } finally {
    await ep.close();
  }
});

test('CreateFunction is retried while a new role is not yet assumable by Lambda', async (t) => {
  const ep = new AwsEndpoint({ settleMs: 100, roleUnassumableTimes: 2 });
  await ep.start();
  const { tmp } = sandbox();
  const saved = { ...process.env };
  Object.assign(process.env, ep.env());
  const aws = awsClients({ endpointUrl: ep.url });
  try {
    const lines: string[] = [];
    const cfg = await deploy(
      aws,
      { functionName: 'fresh', zipFile: makeZip(tmp), role: ROLE, arch: 'x86_64', memoryMb: 1769, timeoutS: 900, ephemeralMb: 512, secretStore: 'secretsmanager', secret: SECRET, networkId: '0011223344556677', roleRetryMs: 50 },
      (l) => lines.push(l),
    );
    t.is(cfg.State, 'Active');
    t.is(ep.calls.filter((c) => c.action === 'lambda:CreateFunction').length, 3);
  } finally {
    aws.destroy();
    process.env = saved;
    await ep.close();
  }
});

test('credentials and region come from a named profile (--profile), as the AWS CLI reads them', async (t) => {
  const { ep, env, tmp, secretFile, zip } = await setup();
  try {
    const config = path.join(tmp, 'aws-config');
    const creds = path.join(tmp, 'aws-credentials');
    fs.writeFileSync(config, '[profile boxer-test]\nregion = eu-central-1\n');
    fs.writeFileSync(creds, `[boxer-test]\naws_access_key_id = ${ep.env().AWS_ACCESS_KEY_ID}\naws_secret_access_key = ${ep.env().AWS_SECRET_ACCESS_KEY}\n`);
    const penv: NodeJS.ProcessEnv = { ...env, AWS_CONFIG_FILE: config, AWS_SHARED_CREDENTIALS_FILE: creds };
    for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_REGION']) delete penv[k];
    const without = await cli(['deploy', '--function', 'p', '--endpoint-url', ep.url, '--zip', zip, '--role', ROLE, '--secret-file', secretFile], penv);
    t.is(without.code, EXIT.AWS, 'no default profile: no credentials or region');
    t.regex(without.err, /no AWS (credentials found|region)/);
    const d = await cli(['deploy', '--function', 'p', '--profile', 'boxer-test', '--endpoint-url', ep.url, '--zip', zip, '--role', ROLE, '--secret-file', secretFile], penv);
    t.is(d.code, 0, d.err);
    t.true(ep.calls.length > 0 && ep.calls.every((c) => c.signedBy.region === 'eu-central-1'));
  } finally {
    await ep.close();
  }
});

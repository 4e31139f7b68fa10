/**
 * `boxer lambda deploy` and `boxer lambda destroy`: what Boxer makes in an AWS account for one function, and
 * how it is taken away again.
 *
 * deploy, in this order (each step printed):
 *   1. the network secret stored in Secrets Manager (`boxer/FUNCTION`) or as an SSM SecureString
 *      (`/boxer/FUNCTION`); created, or given a new value;
 *   2. an inline policy `boxer-FUNCTION-secret` on the function's role allowing it to read that one secret;
 *   3. the function created or updated (code, runtime, handler, architecture, memory, timeout, /tmp size) with
 *      the secret's reference and the network's fingerprint in its environment (BOXER_SECRET_REF,
 *      BOXER_NETWORK_ID: neither is the secret); waits until it is Active and its update Successful;
 *   4. its asynchronous invocations set to no retries (a member is started once; a duplicate delivery is
 *      refused by the seed) and a bounded event age.
 * destroy removes the same four things, each "removed" or "already gone", so it can be run again.
 */
import fs from 'node:fs';
import {
  CreateFunctionCommand,
  DeleteFunctionCommand,
  DeleteFunctionEventInvokeConfigCommand,
  GetFunctionCommand,
  GetFunctionConfigurationCommand,
  PutFunctionEventInvokeConfigCommand,
  UpdateFunctionCodeCommand,
  UpdateFunctionConfigurationCommand,
  waitUntilFunctionActiveV2,
  waitUntilFunctionUpdatedV2,
  type Architecture,
  type FunctionConfiguration,
} from '@aws-sdk/client-lambda';
import { CreateSecretCommand, DeleteSecretCommand, DescribeSecretCommand, PutSecretValueCommand } from '@aws-sdk/client-secrets-manager';
import { DeleteParameterCommand, PutParameterCommand } from '@aws-sdk/client-ssm';
import { DeleteRolePolicyCommand, PutRolePolicyCommand } from '@aws-sdk/client-iam';
import { call, callOrMissing, parseArn, roleName, type AwsClients } from './aws';
import { BoxerError } from '../util/errors';
import type { SecretSource } from './event';
import {
  LAMBDA_HANDLER,
  LAMBDA_MAX_EVENT_AGE_S,
  LAMBDA_MAX_ZIP_BYTES,
  LAMBDA_ROLE_RETRIES,
  LAMBDA_ROLE_RETRY_MS,
  LAMBDA_RUNTIME,
  LAMBDA_WAIT_READY_S,
} from '../constants';

export type SecretStore = 'secretsmanager' | 'ssm';
/** Where the function finds the network secret: the `secret` field of the event (src/lambda/event.ts). */

/** Names of the function's environment variables that deploy sets (read back by run and destroy). */
export const ENV_SECRET_REF = 'BOXER_SECRET_REF';
export const ENV_NETWORK_ID = 'BOXER_NETWORK_ID';

export interface DeployOptions {
  functionName: string;
  zipFile: string;
  /** The function's execution role; required to create, optional to update (the current one is kept). */
  role?: string;
  arch: Architecture;
  memoryMb: number;
  timeoutS: number;
  ephemeralMb: number;
  secretStore: SecretStore;
  /** The network secret and its fingerprint (networkKeys().networkId). */
  secret: string;
  networkId: string;
  /** Override of LAMBDA_ROLE_RETRY_MS (tests). */
  roleRetryMs?: number;
}

export function secretName(functionName: string, store: SecretStore): string {
  return store === 'ssm' ? `/boxer/${functionName}` : `boxer/${functionName}`;
}
export function policyName(functionName: string): string {
  return `boxer-${functionName}-secret`;
}

/** The inline policy that lets the function read its one secret (docs/lambda.md shows it). */
export function secretPolicy(ref: SecretSource, ssmArn: string | null): string {
  const statement =
    'secretsManager' in ref
      ? { Effect: 'Allow', Action: 'secretsmanager:GetSecretValue', Resource: ref.secretsManager }
      : { Effect: 'Allow', Action: 'ssm:GetParameter', Resource: ssmArn };
  return JSON.stringify({ Version: '2012-10-17', Statement: [statement] });
}

/** Reads the secret reference that deploy stored in the function's environment. */
export function secretRefOf(cfg: FunctionConfiguration | undefined): SecretSource | null {
  const text = cfg?.Environment?.Variables?.[ENV_SECRET_REF];
  if (!text) return null;
  try {
    const v = JSON.parse(text) as Record<string, unknown>;
    if (typeof v.secretsManager === 'string') return { secretsManager: v.secretsManager };
    if (typeof v.ssmParameter === 'string') return { ssmParameter: v.ssmParameter };
  } catch {
    // fall through: not ours
  }
  return null;
}

const TAGS = { 'boxer:managed': 'true' };

/**
 * Deploys the function: its secret (1), read access to it for the function's role (2), the function itself,
 * created or updated (3), and its asynchronous invocations without retries (4). Says what it did on `say`.
 */
export async function deploy(aws: AwsClients, o: DeployOptions, say: (line: string) => void): Promise<FunctionConfiguration> {
  const fn = o.functionName;
  const zip = readPackage(o.zipFile);
  const existing = await callOrMissing({ command: 'deploy', action: 'lambda:GetFunction', resource: fn }, () => aws.lambda.send(new GetFunctionCommand({ FunctionName: fn })));
  const role = o.role ?? existing?.Configuration?.Role;
  if (!role) throw new BoxerError('USAGE', `the function ${fn} does not exist yet: give its execution role with --role ARN (docs/lambda.md shows how to make one)`);
  const rname = roleName(role);

  // 1. The secret.
  const { ref, ssmArn } = await storeSecret(aws, o, parseArn(role), say);

  // 2. Read access for the function's role, to that secret only.
  const pname = policyName(fn);
  await call({ command: 'deploy', action: 'iam:PutRolePolicy', resource: rname }, () =>
    aws.iam.send(new PutRolePolicyCommand({ RoleName: rname, PolicyName: pname, PolicyDocument: secretPolicy(ref, ssmArn) })),
  );
  say(`role ${rname}: inline policy ${pname} allows reading only that secret`);

  // 3. The function.
  const cfg = await putFunction(aws, o, { zip, role, ref, existingEnv: existing ? existing.Configuration?.Environment?.Variables ?? {} : null }, say);

  // 4. Asynchronous invocations: no retries, bounded age.
  await call({ command: 'deploy', action: 'lambda:PutFunctionEventInvokeConfig', resource: fn }, () =>
    aws.lambda.send(new PutFunctionEventInvokeConfigCommand({ FunctionName: fn, MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: LAMBDA_MAX_EVENT_AGE_S })),
  );
  say(`function ${fn}: asynchronous invocations are not retried; events older than ${LAMBDA_MAX_EVENT_AGE_S} s are dropped`);
  say(`ready: ${cfg.FunctionArn}`);
  return cfg;
}

/** The package's bytes, refused when it cannot be read or is over Lambda's inline limit. */
function readPackage(zipFile: string): Buffer {
  let zip: Buffer;
  try {
    zip = fs.readFileSync(zipFile);
  } catch (e) {
    throw new BoxerError('USAGE', `cannot read the package ${zipFile}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message} (make one with boxer lambda package --out ${zipFile})`);
  }
  if (zip.length > LAMBDA_MAX_ZIP_BYTES) {
    throw new BoxerError('USAGE', `the package ${zipFile} is ${(zip.length / 1048576).toFixed(1)} MB; Lambda takes at most 50 MB inline: leave large parts of --include out, or put them in a layer`);
  }
  return zip;
}

/** Stores the network secret (Secrets Manager: created or updated; SSM: a SecureString parameter). */
async function storeSecret(aws: AwsClients, o: DeployOptions, roleArn: ReturnType<typeof parseArn>, say: (line: string) => void): Promise<{ ref: SecretSource; ssmArn: string | null }> {
  const fn = o.functionName;
  const name = secretName(fn, o.secretStore);
  if (o.secretStore === 'secretsmanager') {
    const at = { command: 'deploy' as const, action: 'secretsmanager:DescribeSecret', resource: name };
    const found = await callOrMissing(at, () => aws.secrets.send(new DescribeSecretCommand({ SecretId: name })));
    if (found?.ARN) {
      await call({ ...at, action: 'secretsmanager:PutSecretValue' }, () => aws.secrets.send(new PutSecretValueCommand({ SecretId: found.ARN, SecretString: o.secret })));
      say(`secret: updated ${found.ARN}`);
      return { ref: { secretsManager: found.ARN }, ssmArn: null };
    }
    const made = await call({ ...at, action: 'secretsmanager:CreateSecret' }, () =>
      aws.secrets.send(
        new CreateSecretCommand({
          Name: name,
          SecretString: o.secret,
          Description: `Boxer network secret of the Lambda function ${fn}`,
          Tags: Object.entries(TAGS).map(([Key, Value]) => ({ Key, Value })),
        }),
      ),
    );
    if (!made.ARN) throw new BoxerError('AWS', `secretsmanager:CreateSecret on ${name} returned no ARN`);
    say(`secret: created ${made.ARN}`);
    return { ref: { secretsManager: made.ARN }, ssmArn: null };
  }
  await call({ command: 'deploy', action: 'ssm:PutParameter', resource: name }, () =>
    aws.ssm.send(new PutParameterCommand({ Name: name, Value: o.secret, Type: 'SecureString', Overwrite: true, Description: `Boxer network secret of the Lambda function ${fn}` })),
  );
  const region = await aws.region();
  say(`secret: stored as the SecureString parameter ${name}`);
  return { ref: { ssmParameter: name }, ssmArn: `arn:${roleArn?.partition ?? 'aws'}:ssm:${region}:${roleArn?.account ?? ''}:parameter${name}` };
}

/**
 * Creates the function (`existingEnv` null) or updates its code and configuration (keeping its other
 * environment variables), waits until it is active, and returns its configuration.
 */
async function putFunction(
  aws: AwsClients,
  o: DeployOptions,
  p: { zip: Buffer; role: string; ref: SecretSource; existingEnv: Record<string, string> | null },
  say: (line: string) => void,
): Promise<FunctionConfiguration> {
  const fn = o.functionName;
  const settings = {
    Role: p.role,
    Runtime: LAMBDA_RUNTIME,
    Handler: LAMBDA_HANDLER,
    MemorySize: o.memoryMb,
    Timeout: o.timeoutS,
    EphemeralStorage: { Size: o.ephemeralMb },
    Environment: { Variables: { ...(p.existingEnv ?? {}), [ENV_SECRET_REF]: JSON.stringify(p.ref), [ENV_NETWORK_ID]: o.networkId } },
    Description: 'Boxer member (boxer lambda deploy)',
  } as const;
  const waiter = { client: aws.lambda, maxWaitTime: LAMBDA_WAIT_READY_S, minDelay: 1, maxDelay: 5 };
  const waitAt = (what: string) => ({ command: 'deploy' as const, action: `waiting for the function to be ${what}`, resource: fn });
  const what = `(${LAMBDA_RUNTIME}, ${o.arch}, ${o.memoryMb} MB, timeout ${o.timeoutS} s, /tmp ${o.ephemeralMb} MB, package ${kb(p.zip.length)})`;
  if (!p.existingEnv) {
    await createFunction(aws, fn, { FunctionName: fn, ...settings, Code: { ZipFile: p.zip }, Architectures: [o.arch], Tags: TAGS }, o.roleRetryMs ?? LAMBDA_ROLE_RETRY_MS);
    say(`function ${fn}: created ${what}`);
    await call(waitAt('active'), () => waitUntilFunctionActiveV2(waiter, { FunctionName: fn }));
  } else {
    await call({ command: 'deploy', action: 'lambda:UpdateFunctionCode', resource: fn }, () =>
      aws.lambda.send(new UpdateFunctionCodeCommand({ FunctionName: fn, ZipFile: p.zip, Architectures: [o.arch] })),
    );
    await call(waitAt('updated'), () => waitUntilFunctionUpdatedV2(waiter, { FunctionName: fn }));
    await call({ command: 'deploy', action: 'lambda:UpdateFunctionConfiguration', resource: fn }, () =>
      aws.lambda.send(new UpdateFunctionConfigurationCommand({ FunctionName: fn, ...settings })),
    );
    say(`function ${fn}: updated ${what}`);
    await call(waitAt('updated'), () => waitUntilFunctionUpdatedV2(waiter, { FunctionName: fn }));
  }
  const cfg = await call({ command: 'deploy', action: 'lambda:GetFunctionConfiguration', resource: fn }, () => aws.lambda.send(new GetFunctionConfigurationCommand({ FunctionName: fn })));
  if (cfg.State !== 'Active') throw new BoxerError('AWS', `function ${fn} is ${cfg.State}: ${cfg.StateReason ?? 'no reason given'}`);
  return cfg;
}

/** CreateFunction, retried while a new role is not yet assumable by Lambda (IAM propagation). */
async function createFunction(aws: AwsClients, fn: string, input: ConstructorParameters<typeof CreateFunctionCommand>[0], retryMs: number): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await aws.lambda.send(new CreateFunctionCommand(input));
      return;
    } catch (e) {
      const err = e as Error;
      const propagating = err.name === 'InvalidParameterValueException' && /cannot be assumed|role/i.test(err.message);
      if (!propagating || attempt >= LAMBDA_ROLE_RETRIES) return void (await call({ command: 'deploy', action: 'lambda:CreateFunction', resource: fn }, () => Promise.reject(e)));
      await new Promise((r) => setTimeout(r, retryMs));
    }
  }
}

export interface DestroyOptions {
  functionName: string;
  /** The role to remove the policy from when the function is already gone (else read from the function). */
  role?: string;
}

export async function destroy(aws: AwsClients, o: DestroyOptions, say: (line: string) => void): Promise<void> {
  const fn = o.functionName;
  const at = (action: string, resource = fn) => ({ command: 'destroy' as const, action, resource });
  const cfg = await callOrMissing(at('lambda:GetFunctionConfiguration'), () => aws.lambda.send(new GetFunctionConfigurationCommand({ FunctionName: fn })));
  const ref = secretRefOf(cfg ?? undefined);
  const role = o.role ?? cfg?.Role;

  const eic = await callOrMissing(at('lambda:DeleteFunctionEventInvokeConfig'), () => aws.lambda.send(new DeleteFunctionEventInvokeConfigCommand({ FunctionName: fn })));
  say(`function ${fn}: asynchronous invocation settings ${eic ? 'removed' : 'already gone'}`);
  const gone = await callOrMissing(at('lambda:DeleteFunction'), () => aws.lambda.send(new DeleteFunctionCommand({ FunctionName: fn })));
  say(`function ${fn}: ${gone ? 'removed' : 'already gone'}`);

  if (role) {
    const rname = roleName(role);
    const pname = policyName(fn);
    const r = await callOrMissing(at('iam:DeleteRolePolicy', rname), () => aws.iam.send(new DeleteRolePolicyCommand({ RoleName: rname, PolicyName: pname })), ['NoSuchEntityException', 'NoSuchEntity']);
    say(`role ${rname}: inline policy ${pname} ${r ? 'removed' : 'already gone'}`);
  } else {
    say(`role: unknown (the function is gone); give --role ARN to remove the inline policy ${policyName(fn)} from it`);
  }

  // The secret: the one the function named; when the function is already gone, the names deploy uses, in both
  // stores (a destroy run again after a partial one), where a denied look-up in a store never used is no error.
  const sm = ref && 'secretsManager' in ref ? ref.secretsManager : ref ? null : secretName(fn, 'secretsmanager');
  const ssm = ref && 'ssmParameter' in ref ? ref.ssmParameter : ref ? null : secretName(fn, 'ssm');
  const guess = ref ? [] : ['AccessDeniedException'];
  if (sm) {
    const r = await callOrMissing(at('secretsmanager:DeleteSecret', sm), () => aws.secrets.send(new DeleteSecretCommand({ SecretId: sm, ForceDeleteWithoutRecovery: true })), ['ResourceNotFoundException', ...guess]);
    say(`secret ${sm}: ${r ? 'removed' : 'already gone'}`);
  }
  if (ssm) {
    const r = await callOrMissing(at('ssm:DeleteParameter', ssm), () => aws.ssm.send(new DeleteParameterCommand({ Name: ssm })), ['ParameterNotFound', ...guess]);
    say(`secret parameter ${ssm}: ${r ? 'removed' : 'already gone'}`);
  }
}

function kb(n: number): string {
  return n >= 1048576 ? `${(n / 1048576).toFixed(2)} MB` : `${Math.round(n / 1024)} KB`;
}

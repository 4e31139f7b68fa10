/**
 * The AWS side of `boxer lambda deploy/run/destroy`: the SDK v3 clients (Lambda, Secrets Manager, SSM, IAM),
 * built from the SDK's standard credential and region chain (environment, shared config and credentials files,
 * `--profile`, SSO, container and instance roles) exactly as the AWS CLI does, with `--endpoint-url` sending
 * every call elsewhere (tests). Signing is the SDK's (SigV4); nothing here builds a request by hand.
 *
 * Every call goes through `call()`, which turns an SDK failure into a BoxerError a person can act on: a denied
 * call names the IAM action it needed and lists every permission the command needs (docs/lambda.md has the
 * policy documents); missing credentials or region say where the SDK looks for them.
 */
import { LambdaClient } from '@aws-sdk/client-lambda';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SSMClient } from '@aws-sdk/client-ssm';
import { IAMClient } from '@aws-sdk/client-iam';
import { BoxerError } from '../util/errors';
import { AWS_MAX_ATTEMPTS } from '../constants';

export interface AwsOptions {
  /** AWS region (else the SDK's chain: AWS_REGION, the profile's `region`). */
  region?: string;
  /** Named profile of ~/.aws/config (else AWS_PROFILE, else `default`). */
  profile?: string;
  /** Send every AWS call to this URL instead of the service endpoints (a local emulation in tests). */
  endpointUrl?: string;
}

/** The commands, for the list of permissions a denied call prints. */
export type LambdaCommand = 'deploy' | 'run' | 'destroy';

/** The IAM actions each command may call (docs/lambda.md: the deployer's policy). */
export const PERMISSIONS: Record<LambdaCommand, readonly string[]> = {
  deploy: [
    'lambda:GetFunction',
    'lambda:GetFunctionConfiguration',
    'lambda:CreateFunction, lambda:TagResource',
    'lambda:UpdateFunctionCode',
    'lambda:UpdateFunctionConfiguration',
    'lambda:PutFunctionEventInvokeConfig',
    'iam:PassRole (on the function role)',
    'iam:PutRolePolicy (on the function role)',
    'secretsmanager:DescribeSecret, secretsmanager:CreateSecret, secretsmanager:PutSecretValue, secretsmanager:TagResource (or ssm:PutParameter with --secret-store ssm)',
  ],
  run: ['lambda:GetFunctionConfiguration', 'lambda:InvokeFunction'],
  destroy: [
    'lambda:GetFunctionConfiguration',
    'lambda:DeleteFunctionEventInvokeConfig',
    'lambda:DeleteFunction',
    'iam:DeleteRolePolicy (on the function role)',
    'secretsmanager:DeleteSecret (or ssm:DeleteParameter)',
  ],
};

export interface AwsClients {
  readonly lambda: LambdaClient;
  readonly secrets: SecretsManagerClient;
  readonly ssm: SSMClient;
  readonly iam: IAMClient;
  /** The region the clients resolved (from the options or the SDK's chain). */
  region(): Promise<string>;
  destroy(): void;
}

/** Clients are made on first use, so a command builds only the ones it calls. */
export function awsClients(o: AwsOptions): AwsClients {
  // The SDK warns on every start under Node 20 that releases after January 2027 will need Node 22; the
  // versions package-lock.json holds run on 20, and logs are quiet by default (docs/lambda.md says so).
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const config = {
    ...(o.region ? { region: o.region } : {}),
    ...(o.profile ? { profile: o.profile } : {}),
    ...(o.endpointUrl ? { endpoint: o.endpointUrl } : {}),
    maxAttempts: AWS_MAX_ATTEMPTS,
  };
  const made: Array<{ destroy(): void }> = [];
  const lazy = <T extends { destroy(): void }>(make: () => T): (() => T) => {
    let c: T | null = null;
    return () => {
      if (!c) made.push((c = make()));
      return c;
    };
  };
  const lambda = lazy(() => new LambdaClient(config));
  const secrets = lazy(() => new SecretsManagerClient(config));
  const ssm = lazy(() => new SSMClient(config));
  // IAM is a global service: its one endpoint signs in us-east-1 whatever region the others use.
  // IAM is global: the SDK's endpoint rules send it to iam.amazonaws.com, signed for us-east-1, whatever the region.
  const iam = lazy(() => new IAMClient(config));
  return {
    get lambda() {
      return lambda();
    },
    get secrets() {
      return secrets();
    },
    get ssm() {
      return ssm();
    },
    get iam() {
      return iam();
    },
    region: async () => {
      try {
        return await lambda().config.region();
      } catch (e) {
        throw awsError(e, { command: 'run', action: 'resolve the region' });
      }
    },
    destroy: () => made.forEach((c) => c.destroy()),
  };
}

/** What a call is, for its error message. */
export interface CallSite {
  command: LambdaCommand;
  /** The IAM action, e.g. `lambda:CreateFunction`, or what was being done. */
  action: string;
  /** The resource it acted on (function name, secret ARN, role). */
  resource?: string;
}

/** The SDK error's code (`name`) and HTTP status, when it is one. */
export function errorCode(e: unknown): { name: string; status: number | undefined } {
  const err = e as { name?: string; $metadata?: { httpStatusCode?: number } } | null;
  return { name: err?.name ?? 'Error', status: err?.$metadata?.httpStatusCode };
}

const DENIED = new Set(['AccessDeniedException', 'AccessDenied', 'UnauthorizedOperation', 'UnrecognizedClientException', 'InvalidSignatureException', 'ExpiredTokenException']);
const AUTH_ONLY = new Set(['UnrecognizedClientException', 'InvalidSignatureException', 'ExpiredTokenException']);

/** Turns an SDK failure into a BoxerError that says what to do. */
export function awsError(e: unknown, at: CallSite): BoxerError {
  const { name, status } = errorCode(e);
  const message = (e as Error)?.message ?? String(e);
  const where = at.resource ? ` on ${at.resource}` : '';
  if (name === 'CredentialsProviderError' || /Could not load credentials/i.test(message)) {
    return new BoxerError(
      'AWS',
      `no AWS credentials found (${message}). Boxer reads them as the AWS CLI does: AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ` +
        'AWS_PROFILE or --profile (~/.aws/config, ~/.aws/credentials), `aws sso login` for SSO profiles, or an instance/container role',
    );
  }
  if (/Region is missing|Region not accepted/i.test(message)) {
    return new BoxerError('AWS', 'no AWS region: give --region, set AWS_REGION, or set `region` in the profile (~/.aws/config)');
  }
  if (AUTH_ONLY.has(name)) {
    return new BoxerError('AWS', `AWS did not accept the credentials for ${at.action}${where}: ${name}: ${message} (check the access key, the profile, or renew the SSO session with \`aws sso login\`)`);
  }
  if (DENIED.has(name) || (status === 403 && !AUTH_ONLY.has(name))) {
    const perms = PERMISSIONS[at.command].map((p) => `  ${p}`).join('\n');
    return new BoxerError(
      'AWS_DENIED',
      `AWS denied ${at.action}${where}: ${message}\n` +
        `\`boxer lambda ${at.command}\` needs these IAM permissions for the caller:\n${perms}\n` +
        'docs/lambda.md has the whole policy document for the deployer.',
    );
  }
  return new BoxerError('AWS', `${at.action}${where} failed: ${name}${status ? ` (HTTP ${status})` : ''}: ${message}`);
}

/** Runs one AWS call; a failure becomes a BoxerError (awsError). */
export async function call<T>(at: CallSite, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof BoxerError) throw e;
    throw awsError(e, at);
  }
}

/** Runs one AWS call where "it does not exist" is an answer: resolves null then. */
export async function callOrMissing<T>(at: CallSite, fn: () => Promise<T>, missing: readonly string[] = ['ResourceNotFoundException']): Promise<T | null> {
  try {
    return await fn();
  } catch (e) {
    if (missing.includes(errorCode(e).name)) return null;
    if (e instanceof BoxerError) throw e;
    throw awsError(e, at);
  }
}

/** Parts of an ARN (`arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`). */
export function parseArn(arn: string): { partition: string; service: string; region: string; account: string; resource: string } | null {
  const m = /^arn:([a-z-]+):([a-z0-9-]+):([a-z0-9-]*):(\d{12}|aws)?:(.+)$/.exec(arn);
  return m ? { partition: m[1], service: m[2], region: m[3], account: m[4] ?? '', resource: m[5] } : null;
}

/** The role name of an IAM role ARN (`arn:aws:iam::123456789012:role/path/NAME`). */
export function roleName(roleArn: string): string {
  const a = parseArn(roleArn);
  if (!a || a.service !== 'iam' || !a.resource.startsWith('role/')) {
    throw new BoxerError('USAGE', `--role ${JSON.stringify(roleArn)}: expected an IAM role ARN, e.g. arn:aws:iam::123456789012:role/boxer-function`);
  }
  return a.resource.slice(a.resource.lastIndexOf('/') + 1);
}

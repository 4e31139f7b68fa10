/**
 * The network secret inside a function: read from AWS Secrets Manager (`{"secretsManager": ARN}`) or an SSM
 * SecureString parameter (`{"ssmParameter": NAME}`) with the AWS SDK v3 clients, else BOXER_SECRET from the
 * function's environment. The clients take region, credentials and endpoint (AWS_ENDPOINT_URL) from the
 * standard chain: in Lambda, the function role's credentials in its environment. The secret is returned,
 * never logged; errors name the source and what permission or setting to check, not the value.
 *
 * The SDK is loaded when a secret is fetched: nodejs22.x has SDK v3 in the runtime (docs/lambda.md#package).
 */
import { checkSecret } from '../crypto/keys';
import { LAMBDA_SECRET_FETCH_TIMEOUT_MS } from '../constants';
import { BoxerError } from '../util/errors';
import type { SecretSource } from './event';


export async function readLambdaSecret(src: SecretSource | undefined, env: NodeJS.ProcessEnv): Promise<string> {
  if (!src) return checkSecret(env.BOXER_SECRET, 'BOXER_SECRET in the function environment');
  const abortSignal = AbortSignal.timeout(LAMBDA_SECRET_FETCH_TIMEOUT_MS);
  if ('secretsManager' in src) {
    const id = src.secretsManager;
    let value: string | undefined;
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const sm = require('@aws-sdk/client-secrets-manager') as typeof import('@aws-sdk/client-secrets-manager');
      const client = new sm.SecretsManagerClient({});
      try {
        value = (await client.send(new sm.GetSecretValueCommand({ SecretId: id }), { abortSignal })).SecretString;
      } finally {
        client.destroy();
      }
    } catch (e) {
      throw new BoxerError('USAGE', `cannot read the network secret from Secrets Manager (${id}): ${awsReason(e)}; the function's role needs secretsmanager:GetSecretValue on it`);
    }
    if (value === undefined) throw new BoxerError('USAGE', `the Secrets Manager secret ${id} has no SecretString (store the network secret as text)`);
    return checkSecret(value, `Secrets Manager secret ${id}`);
  }
  const name = src.ssmParameter;
  let value: string | undefined;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const ssm = require('@aws-sdk/client-ssm') as typeof import('@aws-sdk/client-ssm');
    const client = new ssm.SSMClient({});
    try {
      value = (await client.send(new ssm.GetParameterCommand({ Name: name, WithDecryption: true }), { abortSignal })).Parameter?.Value;
    } finally {
      client.destroy();
    }
  } catch (e) {
    throw new BoxerError('USAGE', `cannot read the network secret from the SSM parameter ${name}: ${awsReason(e)}; the function's role needs ssm:GetParameter on it (and kms:Decrypt for its key)`);
  }
  if (value === undefined) throw new BoxerError('USAGE', `the SSM parameter ${name} has no value`);
  return checkSecret(value, `SSM parameter ${name}`);
}

/** An SDK error as one line: its name (AccessDeniedException, ResourceNotFoundException, ...) and message. */
function awsReason(e: unknown): string {
  const err = e as { name?: string; message?: string; code?: string };
  if (err?.code === 'MODULE_NOT_FOUND') return `the AWS SDK is not available (${err.message?.split('\n')[0]}); use the nodejs22.x runtime or package with --with-aws-sdk`;
  return `${err?.name ?? 'Error'}: ${err?.message ?? String(e)}`;
}

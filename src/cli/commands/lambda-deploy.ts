/** `boxer lambda deploy`: checks the command line, then src/lambda/deploy.ts does the work, printing each step. */
import { awsClients, type AwsOptions } from '../../lambda/aws';
import { deploy, type SecretStore } from '../../lambda/deploy';
import { readSecret } from '../secret';
import { networkKeys } from './common';
import { BoxerError } from '../../util/errors';
import { checkFunctionName } from './lambda-destroy';

export interface LambdaDeployArgs {
  aws: AwsOptions;
  functionName: string;
  zipFile: string;
  role?: string;
  arch: 'x86_64' | 'arm64';
  memoryMb: number;
  timeoutS: number;
  ephemeralMb: number;
  secretFile?: string;
  secretStore: SecretStore;
}

export async function lambdaDeployCommand(a: LambdaDeployArgs): Promise<void> {
  checkFunctionName(a.functionName);
  if (!(Number.isInteger(a.memoryMb) && a.memoryMb >= 128 && a.memoryMb <= 10240)) throw new BoxerError('USAGE', '--memory: expected MB between 128 and 10240');
  if (!(Number.isInteger(a.timeoutS) && a.timeoutS >= 1 && a.timeoutS <= 900)) throw new BoxerError('USAGE', '--timeout: expected seconds between 1 and 900 (Lambda\'s limit)');
  if (!(Number.isInteger(a.ephemeralMb) && a.ephemeralMb >= 512 && a.ephemeralMb <= 10240)) throw new BoxerError('USAGE', '--ephemeral-storage: expected MB between 512 and 10240');
  if (!a.secretFile && !process.env.BOXER_SECRET) {
    throw new BoxerError('USAGE', 'deploy stores the network secret for the functions: give --secret-file (the file `boxer seed` printed or was given) or set $BOXER_SECRET');
  }
  const secret = readSecret(a.secretFile);
  const { networkId } = await networkKeys(secret);
  const aws = awsClients(a.aws);
  try {
    await deploy(aws, { ...a, secret, networkId }, (line) => console.log(line));
  } finally {
    aws.destroy();
  }
}

/** `boxer lambda destroy`: removes what deploy made (src/lambda/deploy.ts), each step "removed" or "already gone". */
import { awsClients, type AwsOptions } from '../../lambda/aws';
import { destroy } from '../../lambda/deploy';
import { BoxerError } from '../../util/errors';

export interface LambdaDestroyArgs {
  aws: AwsOptions;
  functionName: string;
  role?: string;
}

/** Lambda's rule for a function name (letters, digits, - and _, at most 64), checked before any AWS call. */
export function checkFunctionName(name: string): void {
  if (!/^[a-zA-Z0-9_-]{1,64}$/.test(name)) throw new BoxerError('USAGE', `--function ${JSON.stringify(name)}: a Lambda function name is 1 to 64 letters, digits, - or _`);
}

export async function lambdaDestroyCommand(a: LambdaDestroyArgs): Promise<void> {
  checkFunctionName(a.functionName);
  const aws = awsClients(a.aws);
  try {
    await destroy(aws, { functionName: a.functionName, role: a.role }, (line) => console.log(line));
  } finally {
    aws.destroy();
  }
}

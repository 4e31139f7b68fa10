/** `boxer lambda run`: checks the command line, then src/lambda/invoke.ts starts and follows the members. */
import { awsClients, type AwsOptions } from '../../lambda/aws';
import { runMembers, succeeded } from '../../lambda/invoke';
import { readSecret } from '../secret';
import { networkKeys, parseHostPort } from './common';
import { checkName } from '../../control/names';
import { BoxerError } from '../../util/errors';
import { checkFunctionName } from './lambda-destroy';

export interface LambdaRunArgs {
  aws: AwsOptions;
  functionName: string;
  seed: string;
  nodes: number;
  secretFile?: string;
  name?: string;
  service?: string;
  env: string[];
  leaveBeforeS?: number;
  joinTimeoutS: number;
  cmd: string[];
}

export async function lambdaRunCommand(a: LambdaRunArgs): Promise<void> {
  checkFunctionName(a.functionName);
  if (a.cmd.length === 0) throw new BoxerError('USAGE', 'nothing to run: give the command after --, e.g. boxer lambda run --function F --seed HOST:PORT --nodes 5 -- app/start.sh');
  if (!(Number.isInteger(a.nodes) && a.nodes >= 1)) throw new BoxerError('USAGE', '--nodes: expected a whole number of functions, at least 1');
  const { host, port } = parseHostPort(a.seed, '--seed');
  if (a.name) checkName(`${a.name}-${a.nodes - 1}`, '--name (with the member\'s index appended)');
  if (a.service) checkName(a.service, '--service');
  const env: Record<string, string> = {};
  for (const kv of a.env) {
    const i = kv.indexOf('=');
    if (i < 1) throw new BoxerError('USAGE', `--env ${JSON.stringify(kv)}: expected NAME=VALUE`);
    env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  if (a.leaveBeforeS !== undefined && !(a.leaveBeforeS > 0)) throw new BoxerError('USAGE', '--leave-before: expected seconds, more than 0');
  if (!(a.joinTimeoutS > 0)) throw new BoxerError('USAGE', '--join-timeout: expected seconds, more than 0');
  const { psk, keys, networkId } = await networkKeys(readSecret(a.secretFile));
  const aws = awsClients(a.aws);
  let results;
  try {
    results = await runMembers(
      aws,
      {
        functionName: a.functionName,
        seedHost: host,
        seedPort: port,
        nodes: a.nodes,
        psk,
        keys,
        networkId,
        name: a.name,
        service: a.service,
        env,
        leaveBeforeMs: a.leaveBeforeS === undefined ? undefined : Math.round(a.leaveBeforeS * 1000),
        joinTimeoutMs: a.joinTimeoutS * 1000,
        cmd: a.cmd,
      },
      (line) => console.log(line),
    );
  } finally {
    aws.destroy();
  }
  const ok = results.filter(succeeded).length;
  console.log(`${ok}/${results.length} members succeeded`);
  if (ok < results.length) throw new BoxerError('MEMBERS_FAILED', `${results.length - ok} of ${results.length} members did not exit 0 (see above)`);
}

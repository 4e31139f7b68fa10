/**
 * `boxer lambda ...`: the AWS Lambda subcommands, registered on a yargs builder (as `boxer lab`). Each
 * subcommand's module (and the AWS SDK) is loaded only when it runs. Options every AWS-calling subcommand
 * takes: --region, --profile, --endpoint-url (docs/lambda.md, docs/cli.md).
 */
import type { Argv } from 'yargs';
import { LAMBDA_DEFAULT_EPHEMERAL_MB, LAMBDA_DEFAULT_MEMORY_MB, LAMBDA_DEFAULT_TIMEOUT_S, LAMBDA_RUN_JOIN_TIMEOUT_S } from '../../constants';
import type { AwsOptions } from '../../lambda/aws';

function awsOptions<T>(y: Argv<T>) {
  return y
    .option('function', { type: 'string', demandOption: true, description: 'the Lambda function name' })
    .option('region', { type: 'string', description: 'AWS region (default: AWS_REGION, else the profile\'s region)' })
    .option('profile', { type: 'string', description: 'named AWS profile (default: AWS_PROFILE, else default); SSO profiles work after `aws sso login`' })
    .option('endpoint-url', { type: 'string', description: 'send every AWS call to this URL instead (a local emulation)' });
}

function aws(a: { region?: string; profile?: string; 'endpoint-url'?: string }): AwsOptions {
  return { region: a.region, profile: a.profile, endpointUrl: a['endpoint-url'] };
}

/** `boxer lambda deploy`'s options. */
function deployOptions<T>(y: Argv<T>) {
  return awsOptions(y)
    .option('zip', { type: 'string', demandOption: true, description: 'the package (boxer lambda package --out FILE)' })
    .option('role', { type: 'string', description: "the function's execution role ARN (needed to create; docs/lambda.md shows how to make one)" })
    .option('arch', { choices: ['x86_64', 'arm64'] as const, default: 'x86_64' as const, description: 'the architecture the package was built for' })
    .option('memory', { type: 'number', default: LAMBDA_DEFAULT_MEMORY_MB, description: 'memory in MB (1769 = one vCPU)' })
    .option('timeout', { type: 'number', default: LAMBDA_DEFAULT_TIMEOUT_S, description: 'function timeout in seconds (at most 900): the longest a member can run' })
    .option('ephemeral-storage', { type: 'number', default: LAMBDA_DEFAULT_EPHEMERAL_MB, description: '/tmp size in MB (512 to 10240)' })
    .option('secret-file', { type: 'string', description: 'file holding the network secret (else $BOXER_SECRET)' })
    .option('secret-store', { choices: ['secretsmanager', 'ssm'] as const, default: 'secretsmanager' as const, description: 'where the secret is kept: Secrets Manager, or an SSM SecureString parameter' });
}

/** `boxer lambda run`'s options. */
function runOptions<T>(y: Argv<T>) {
  return awsOptions(y)
    .option('seed', { type: 'string', demandOption: true, description: 'the seed, HOST:PORT, reachable from the functions and from here' })
    .option('nodes', { type: 'number', demandOption: true, description: 'how many functions to start (each waits until all have joined)' })
    .option('secret-file', { type: 'string', description: 'file holding the network secret (else $BOXER_SECRET); the functions read theirs from where deploy stored it' })
    .option('name', { type: 'string', description: 'member names: NAME-0, NAME-1, ... (default node-ID)' })
    .option('service', { type: 'string', description: 'a service name every member provides' })
    .option('env', { type: 'string', array: true, default: [] as string[], description: 'K=V added to CMD\'s environment (repeatable)' })
    .option('leave-before', { type: 'number', description: 'seconds before the function\'s deadline at which CMD is stopped and the member leaves (default: the handler\'s)' })
    .option('join-timeout', { type: 'number', default: LAMBDA_RUN_JOIN_TIMEOUT_S, description: 'seconds to wait for every function to join' });
}

export function lambdaCommands(y: Argv, cmd: string[]): Argv {
  return y
    .command(
      'package',
      'build the function zip: Boxer, its dependencies, the native parts for --arch, and --include DIR under app/',
      (p) =>
        p
          .option('out', { type: 'string', default: 'boxer.zip', description: 'where to write the zip' })
          .option('include', { type: 'string', array: true, default: [] as string[], description: "a directory with your program, put under the zip's app/DIR (repeatable)" })
          .option('arch', { choices: ['x86_64', 'arm64'] as const, default: 'x86_64' as const, description: "the function's architecture" })
          .option('with-aws-sdk', { type: 'boolean', default: false, description: 'bundle the AWS SDK clients the handler uses (default: the nodejs22.x runtime provides them)' }),
      async (a) => (await import('./lambda-package')).lambdaPackageCommand({ out: a.out, include: a.include, arch: a.arch, withAwsSdk: a['with-aws-sdk'] }),
    )
    .command(
      'deploy',
      'create or update the function, store the network secret, give the function read access to it',
      (c) =>
        deployOptions(c),
      async (a) =>
        (await import('./lambda-deploy')).lambdaDeployCommand({
          aws: aws(a),
          functionName: a.function,
          zipFile: a.zip,
          role: a.role,
          arch: a.arch,
          memoryMb: a.memory,
          timeoutS: a.timeout,
          ephemeralMb: a['ephemeral-storage'],
          secretFile: a['secret-file'],
          secretStore: a['secret-store'],
        }),
    )
    .command(
      'run',
      'invoke --nodes functions that join the network and run CMD; show them join and end',
      (c) =>
        runOptions(c),
      async (a) =>
        (await import('./lambda-run')).lambdaRunCommand({
          aws: aws(a),
          functionName: a.function,
          seed: a.seed,
          nodes: a.nodes,
          secretFile: a['secret-file'],
          name: a.name,
          service: a.service,
          env: a.env,
          leaveBeforeS: a['leave-before'],
          joinTimeoutS: a['join-timeout'],
          cmd,
        }),
    )
    .command(
      'destroy',
      'remove what deploy made: the function, its invocation settings, the secret, the role policy',
      (c) => awsOptions(c).option('role', { type: 'string', description: 'the role to remove the inline policy from, when the function is already gone' }),
      async (a) => (await import('./lambda-destroy')).lambdaDestroyCommand({ aws: aws(a), functionName: a.function, role: a.role }),
    );
}

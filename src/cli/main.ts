/**
 * The `boxer` command line: the public contract (docs/cli.md). Each command lives in its own module under
 * src/cli/commands; this file parses arguments, sets the log level and maps errors to exit statuses.
 */
import type { InterceptChoice } from './intercept';
import yargs, { type Argv } from 'yargs';
import { BoxerError, EXIT } from '../util/errors';
import { setLevel } from '../util/log';
import { DEFAULT_NETWORK, DEFAULT_SEED_PORT, DRAIN_GRACE_MS, MAX_DRAIN_GRACE_S } from '../constants';
// Each command's module is loaded when that command runs, not before: `boxer run` in a function starts
// without reading the seed's, the demo's or the lab's code (start-up time is a cold start's cost).

/** --drain-grace SECONDS as milliseconds; a clear error for anything but 0..MAX_DRAIN_GRACE_S. */
function drainGrace(s: number): number {
  if (!(Number.isFinite(s) && s >= 0 && s <= MAX_DRAIN_GRACE_S)) {
    throw new BoxerError('USAGE', `--drain-grace ${s}: expected a number of seconds from 0 to ${MAX_DRAIN_GRACE_S}`);
  }
  return Math.round(s * 1000);
}

const EXIT_HELP = `Exit status:
  0   success; \`boxer run\` and \`boxer seed -- CMD\` exit with CMD's status (128+N if killed by signal N)
  ${EXIT.USAGE}  bad command line or configuration (e.g. no secret, invalid name, port in use)
  ${EXIT.SEED_UNREACHABLE}  the seed could not be reached
  ${EXIT.INTERNAL}  internal error (a bug: please report it)
  ${EXIT.NAME_TAKEN}  the name asked for is taken
  ${EXIT.NETWORK_FULL}  the virtual network has no free address
  ${EXIT.DUPLICATE}  this member of a \`boxer lambda run\` has joined already (a duplicate invocation)
  ${EXIT.WRONG_SECRET}  wrong network secret
  ${EXIT.NO_AGENT}  no local agent found (status, ping)
  ${EXIT.UNREACHABLE}  the member could not be reached (ping)
  ${EXIT.LAB_UNAVAILABLE}  the lab (emulated NATs) cannot be built here
  ${EXIT.AWS}  an AWS call failed (no credentials or region, an error from the service)
  ${EXIT.AWS_DENIED}  AWS denied a call (the message lists the IAM permissions needed)
  ${EXIT.MEMBERS_FAILED}  \`boxer lambda run\`: a member's command failed, was cut by its deadline, died or never joined`;

export function splitDashDash(argv: string[]): [string[], string[]] {
  const i = argv.indexOf('--');
  return i < 0 ? [argv, []] : [argv.slice(0, i), argv.slice(i + 1)];
}

/** The command table: one `.command()` a subcommand, long because it is a table (each entry's handler is in commands/). */
export function buildCli(argv: string[], cmd: string[]): Argv {
  return yargs(argv)
    .scriptName('boxer')
    .usage('$0 <command> [options]\n\nOne private network for serverless functions and VMs behind NATs.')
    .option('verbose', { alias: 'v', type: 'count', description: 'say more (-v info, -vv debug)', global: true })
    .middleware((a) => {
      const v = a.verbose as number;
      if (v >= 2) setLevel('debug');
      else if (v === 1) setLevel('info');
    })
    .command(
      'seed',
      'run the rendezvous of a network on a routable host (and, with -- CMD, be a member running CMD)',
      (y) =>
        y
          .option('listen', { type: 'string', default: `0.0.0.0:${DEFAULT_SEED_PORT}`, description: 'address and port to listen on' })
          .option('network', { type: 'string', default: DEFAULT_NETWORK, description: 'virtual network (CIDR)' })
          .option('secret-file', { type: 'string', description: 'file holding the network secret (else $BOXER_SECRET; else one is generated)' })
          .option('name', { type: 'string', description: "this member's name when running CMD (default node-ID)" })
          .option('service', { type: 'string', array: true, default: [] as string[], description: 'a service name this member provides (repeatable)' })
          .option('discovery-port', {
            type: 'number',
            description: 'second port for NAT discovery, on the --listen address (default: the --listen port + 1; agents then need BOXER_DISCOVERY_PORT)',
          }),
      async (a) =>
        (await import('./commands/seed')).seedCommand({ listen: a.listen, network: a.network, secretFile: a['secret-file'], name: a.name, services: a.service, discoveryPort: a['discovery-port'], cmd }),
    )
    .command(
      'run',
      'join a network, wait for --nodes members, then run CMD with its virtual address in its environment',
      (y) =>
        y
          .option('seed', { type: 'string', demandOption: true, description: 'the seed, HOST:PORT (HOST may be a DNS name)' })
          .option('nodes', { type: 'number', description: 'wait until the network has this many members before starting CMD' })
          .option('name', { type: 'string', description: "this member's name (default node-ID)" })
          .option('service', { type: 'string', array: true, default: [] as string[], description: 'a service name this member provides (repeatable)' })
          .option('secret-file', { type: 'string', description: 'file holding the network secret (else $BOXER_SECRET)' })
          .option('join-timeout', { type: 'number', default: 15, description: 'seconds to keep trying an unreachable seed' })
          .option('drain-grace', { type: 'number', default: DRAIN_GRACE_MS / 1000, description: 'on SIGTERM/SIGINT/SIGHUP, a member with services leaves them first and lets open connections finish for up to this many seconds before CMD gets the signal (0: at once)' })
          .option('shim', { type: 'boolean', default: true, description: 'load the preload shim into CMD (--no-shim: CMD runs without the virtual network)' })
          .option('intercept', {
            type: 'string',
            choices: ['auto', 'shim', 'seccomp'],
            default: process.env.BOXER_INTERCEPT || 'auto',
            description: 'how CMD gets the virtual network: the preload shim, the seccomp supervisor (Go and static programs), or auto (from its ELF headers); env BOXER_INTERCEPT',
          }),
      async (a) =>
        (await import('./commands/run')).runCommandCli({
          shim: a.shim,
          intercept: a.intercept as InterceptChoice,
          seed: a.seed,
          nodes: a.nodes,
          name: a.name,
          services: a.service,
          secretFile: a['secret-file'],
          joinTimeoutMs: a['join-timeout'] * 1000,
          drainGraceMs: drainGrace(a['drain-grace']),
          cmd,
        }),
    )
    .command(
      'status',
      'list the members as the local agent sees them',
      (y) =>
        y
          .option('agent', { type: 'string', description: "the agent's control socket (default $BOXER_AGENT, else the only one running)" })
          .option('json', { type: 'boolean', default: false, description: 'machine-readable output' }),
      async (a) => (await import('./commands/status')).statusCommand({ agent: a.agent, json: a.json }),
    )
    .command(
      'ping <name>',
      'open (or use) the link to a member and print its path and round-trip time',
      (y) =>
        y
          .positional('name', { type: 'string', demandOption: true, description: 'member name, virtual address or id' })
          .option('agent', { type: 'string', description: "the agent's control socket (default $BOXER_AGENT, else the only one running)" })
          .option('json', { type: 'boolean', default: false, description: 'machine-readable output' }),
      async (a) => (await import('./commands/ping')).pingCommand({ name: String(a.name), agent: a.agent, json: a.json }),
    )
    .command(
      'demo',
      'run a seed and a few members on this machine, talking over Boxer',
      (y) =>
        y
          .option('loopback', { type: 'boolean', default: false, description: 'members share this host network (no NAT is crossed)' })
          .option('scenario', {
            choices: ['web', 'burst'] as const,
            default: 'web' as const,
            description: 'web: members behind NATs fetch a page by name; burst: functions join a loaded service, live view (root)',
          })
          .option('seconds', { type: 'number', description: 'burst: length of the run (default 30)' }),
      async (a) => (await import('./commands/demo')).demoCommand({ loopback: a.loopback, scenario: a.scenario, seconds: a.seconds }),
    )
    .command('lambda', 'AWS Lambda: package Boxer and a program, deploy it, run N functions as members, destroy (docs/lambda.md)', (y) =>
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      (require('./commands/lambda') as typeof import('./commands/lambda')).lambdaCommands(y, cmd).demandCommand(1, 'say what to do: package, deploy, run or destroy'),
    )
    .command('lab', 'an emulated datacenter on this machine: public hosts, functions, real NATs (root)', (y) =>
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      (require('../../overlay/cli') as typeof import('../../overlay/cli')).labCommand(y).demandCommand(1, 'say what to do with the lab: up, down, exec, status, set'),
    )
    .demandCommand(1, 'say which command to run (boxer --help lists them)')
    .strict()
    .epilog(EXIT_HELP)
    .wrap(Math.min(110, process.stdout.columns || 110))
    .fail((msg, err, y) => {
      if (err) throw err;
      void y;
      console.error(`boxer: ${msg}\n(boxer --help shows the usage)`);
      process.exit(EXIT.USAGE);
    });
}

export function main(raw: string[]): void {
  const [argv, cmd] = splitDashDash(raw);
  // Commands that join: libsodium's WebAssembly compiles in the background while yargs loads and parses.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  if (argv[0] === 'run' || argv[0] === 'seed') void (require('../crypto/sodium') as typeof import('../crypto/sodium')).sodiumReady().catch(() => undefined);
  Promise.resolve()
    .then(() => buildCli(argv, cmd).parseAsync())
    .catch((e: unknown) => {
      if (e instanceof BoxerError) {
        console.error(`boxer: ${e.message}`);
        process.exit(e.exitCode);
      }
      console.error(`boxer: internal error: ${(e as Error)?.stack ?? String(e)}`);
      process.exit(EXIT.INTERNAL);
    });
}

/**
 * `boxer lambda run`: starts N members of one run as asynchronous Lambda invocations and follows them.
 *
 * How the CLI learns what happens inside the functions: an asynchronous invocation (InvocationType Event)
 * returns nothing but "accepted", and Lambda delivers the handler's result nowhere unless a destination is
 * set up. The CLI holds the network secret, so it connects to the seed as an observer (src/control/watch.ts)
 * for its run id: it hears each member join (`joined 17/20`) and each leave, with the outcome the member's
 * handler told the seed in its `leave` (exit status, signal, `exited` or `deadline`). A member that ends
 * without leaving (Lambda killed it, it lost the network) is declared dead by the seed within seconds and
 * reported so; one that never joins within --join-timeout is reported with where its log is. This works the
 * same on real Lambda and in the lab, needs no AWS resource beyond the function, and survives the CLI:
 * a run goes on if the CLI is stopped.
 */
import crypto from 'node:crypto';
import { GetFunctionConfigurationCommand, InvokeCommand } from '@aws-sdk/client-lambda';
import { call, type AwsClients } from './aws';
import { ENV_NETWORK_ID, secretRefOf } from './deploy';
import type { EventJson, SecretSource } from './event';
import { watchSeed, type Watched, type Watcher } from '../control/watch';
import type { Connector } from '../control/connectors';
import type { KeyPair } from '../crypto/keys';
import type { Outcome } from '../wire/messages';
import { BoxerError } from '../util/errors';
import { LAMBDA_INVOKE_CONCURRENCY, LAMBDA_MAX_ASYNC_PAYLOAD } from '../constants';

export interface RunOptions {
  functionName: string;
  seedHost: string;
  seedPort: number;
  nodes: number;
  psk: Uint8Array;
  keys: KeyPair;
  networkId: string;
  /** Members are named NAME-INDEX (default: node-ID). */
  name?: string;
  service?: string;
  env: Record<string, string>;
  leaveBeforeMs?: number;
  joinTimeoutMs: number;
  cmd: string[];
  /** How to reach the seed (tests: through the lab). */
  connect?: Connector;
}

/** How one member of the run ended. */
export interface MemberResult {
  index: number;
  kind: 'exited' | 'deadline' | 'died' | 'never-joined' | 'not-invoked' | 'lost';
  member?: Watched;
  outcome?: Outcome;
  detail?: string;
}

/** The event of one member (the handler's event, src/lambda/event.ts). */
export function describe(r: MemberResult): string {
  const who = r.member ? `member ${r.index} (${r.member.name}, ${r.member.addr})` : `member ${r.index}`;
  const o = r.outcome;
  switch (r.kind) {
    case 'exited':
      return `${who}: exited ${o?.code ?? '?'}${o?.signal ? ` (killed by ${o.signal})` : ''}`;
    case 'deadline':
      return `${who}: cut by its deadline${o?.signal ? ` (${o.signal})` : ''}, exit ${o?.code ?? 'none'}`;
    default:
      return `${who}: ${r.kind.replace('-', ' ')}${r.detail ? ` (${r.detail})` : ''}`;
  }
}

/** Success: the command of every member exited 0 by itself. */
export function succeeded(r: MemberResult): boolean {
  return r.kind === 'exited' && r.outcome?.code === 0;
}

export async function runMembers(aws: AwsClients, o: RunOptions, say: (line: string) => void): Promise<MemberResult[]> {
  const fn = o.functionName;
  const cfg = await call({ command: 'run', action: 'lambda:GetFunctionConfiguration', resource: fn }, () => aws.lambda.send(new GetFunctionConfigurationCommand({ FunctionName: fn })));
  if (cfg.State !== 'Active') throw new BoxerError('AWS', `function ${fn} is ${cfg.State ?? 'in an unknown state'}${cfg.StateReason ? `: ${cfg.StateReason}` : ''}; wait, or deploy it again`);
  const vars = cfg.Environment?.Variables ?? {};
  const ref = secretRefOf(cfg);
  if (!ref && !vars.BOXER_SECRET) throw new BoxerError('USAGE', `function ${fn} has no network secret: deploy it with boxer lambda deploy --secret-file FILE`);
  if (vars[ENV_NETWORK_ID] && vars[ENV_NETWORK_ID] !== o.networkId) {
    throw new BoxerError('WRONG_SECRET', `function ${fn} was deployed with another network secret than --secret-file: deploy it again with this one, or give the one it has`);
  }
  const leaveBeforeMs = o.leaveBeforeMs;
  if (leaveBeforeMs !== undefined && cfg.Timeout && leaveBeforeMs >= cfg.Timeout * 1000) {
    throw new BoxerError('USAGE', `--leave-before ${leaveBeforeMs / 1000} s is not shorter than the function's timeout (${cfg.Timeout} s)`);
  }

  const run = crypto.randomBytes(8).toString('hex');
  const watcher = await watchSeed({ host: o.seedHost, port: o.seedPort, psk: o.psk, keys: o.keys, run, connect: o.connect });
  const results = new Map<number, MemberResult>();
  const joined = new Map<number, Watched>();
  say(`run ${run}: invoking ${o.nodes} × ${fn}`);
  try {
    return await new Promise<MemberResult[]>((resolve, reject) => {
      const finish = (r: MemberResult) => {
        if (results.has(r.index)) return;
        results.set(r.index, r);
        say(describe(r));
        if (results.size === o.nodes) resolve([...results.values()].sort((a, b) => a.index - b.index));
      };
      follow(watcher, o.nodes, joined, finish, say);
      const joinTimer = setTimeout(() => {
        for (let i = 0; i < o.nodes; i++) {
          if (!joined.has(i)) finish({ index: i, kind: 'never-joined', detail: `not within ${Math.round(o.joinTimeoutMs / 1000)} s; its log: CloudWatch log group /aws/lambda/${fn}` });
        }
      }, o.joinTimeoutMs);
      joinTimer.unref();
      watcher.on('close', (reason) => {
        clearTimeout(joinTimer);
        for (let i = 0; i < o.nodes; i++) finish({ index: i, kind: joined.has(i) ? 'lost' : 'never-joined', member: joined.get(i), detail: `the connection to the seed closed${reason ? `: ${reason}` : ''}` });
      });
      void invokeAll(aws, fn, o.nodes, (index) => memberEvent(o, run, index, ref, leaveBeforeMs), (index, e) => {
        // A denied or unusable call will not work for the next member either: stop with its message.
        if (e instanceof BoxerError && e.code !== 'AWS') {
          reject(e);
          return true;
        }
        finish({ index, kind: 'not-invoked', detail: (e as Error).message });
        return false;
      });
    });
  } finally {
    watcher.close();
  }
}

/** Turns the observer's events into progress lines and results. */
function follow(watcher: Watcher, nodes: number, joined: Map<number, Watched>, finish: (r: MemberResult) => void, say: (line: string) => void): void {
  watcher.on('joined', (w) => {
    if (w.index === undefined || w.index >= nodes || joined.has(w.index)) return;
    joined.set(w.index, w);
    say(`joined ${joined.size}/${nodes}: member ${w.index} is ${w.name} (${w.addr})`);
  });
  watcher.on('left', (w) => {
    if (w.index === undefined || joined.get(w.index)?.id !== w.id) return;
    if (w.reason === 'dead' || !w.outcome) return finish({ index: w.index, kind: 'died', member: w, detail: 'no outcome: the function was killed or lost its network' });
    finish({ index: w.index, kind: w.outcome.reason === 'deadline' ? 'deadline' : 'exited', member: w, outcome: w.outcome });
  });
}

export function memberEvent(o: RunOptions, run: string, index: number, ref: SecretSource | null, leaveBeforeMs: number | undefined): EventJson {
  return {
    seed: `${o.seedHost.includes(':') ? `[${o.seedHost}]` : o.seedHost}:${o.seedPort}`,
    nodes: o.nodes,
    command: o.cmd,
    ...(o.name ? { name: `${o.name}-${index}` } : {}),
    ...(o.service ? { service: o.service } : {}),
    ...(Object.keys(o.env).length ? { env: o.env } : {}),
    ...(leaveBeforeMs !== undefined ? { leaveBeforeMs } : {}),
    ...(ref ? { secret: ref } : {}),
    run,
    index,
  };
}

/** Invokes every member asynchronously, at most LAMBDA_INVOKE_CONCURRENCY calls in flight; `failed` true: stop. */
async function invokeAll(aws: AwsClients, fn: string, n: number, event: (i: number) => EventJson, failed: (i: number, e: unknown) => boolean): Promise<void> {
  let next = 0;
  let stop = false;
  const worker = async () => {
    while (next < n && !stop) {
      const i = next++;
      const payload = Buffer.from(JSON.stringify(event(i)));
      try {
        if (payload.length > LAMBDA_MAX_ASYNC_PAYLOAD) throw new BoxerError('USAGE', `the event is ${payload.length} bytes; an asynchronous invocation takes at most ${LAMBDA_MAX_ASYNC_PAYLOAD}: shorten the command or --env`);
        const r = await call({ command: 'run', action: 'lambda:InvokeFunction', resource: fn }, () => aws.lambda.send(new InvokeCommand({ FunctionName: fn, InvocationType: 'Event', Payload: payload })));
        if (r.StatusCode !== 202) throw new Error(`Lambda answered ${r.StatusCode} instead of 202 (accepted)`);
      } catch (e) {
        stop ||= failed(i, e);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, LAMBDA_INVOKE_CONCURRENCY) }, worker));
}

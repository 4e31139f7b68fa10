/**
 * The Lambda handler (`index.handler` at the zip's root): one invocation is one member of a Boxer network.
 * It checks the event (src/lambda/event.ts), cleans what a previous invocation in this execution environment
 * left (src/lambda/reuse.ts), reads the network secret (src/lambda/secret.ts), and then goes through the same
 * member session as `boxer run` (src/cli/session.ts): join, barrier, the command with the shim, leave.
 *
 * Deadline: `leaveBeforeMs` before the function's deadline (context.getRemainingTimeInMillis()), the command
 * gets SIGTERM, SIGKILL after STOP_GRACE_MS, the member leaves (the others drop it at once), and the handler
 * returns before Lambda would kill it. The command's end is a result, never a thrown error:
 * `{exitCode, signal, reason: "exited" | "deadline", name, addr}`. Bad events and failures to join are thrown
 * (the invocation fails with errorType `Boxer.<CODE>` and a message saying what to do).
 */
import fs from 'node:fs';
import path from 'node:path';
import { MemberSession, SessionStopped, type CommandOutcome } from '../cli/session';
import { JOIN_TIMEOUT_MS, LAMBDA_MIN_RUN_MS } from '../constants';
import { BoxerError } from '../util/errors';
import { logger } from '../util/log';
import { decodeEvent, EventError, type LambdaEvent } from './event';
import { cleanUpPrevious, MARK, MARK_VAR, noteGroup } from './reuse';
import { readLambdaSecret } from './secret';

const log = logger('lambda');

/** The part of Lambda's context object the handler uses. */
export interface LambdaContext {
  getRemainingTimeInMillis(): number;
  awsRequestId?: string;
}

export interface LambdaResult {
  /** The command's exit code; null when a signal ended it or it never started. */
  exitCode: number | null;
  /** The signal that ended the command (SIGTERM or SIGKILL at the deadline), else null. */
  signal: NodeJS.Signals | null;
  /** `deadline`: the handler stopped the command (or the barrier wait) leaveBeforeMs before the deadline. */
  reason: 'exited' | 'deadline';
  /** This member's name and virtual address. */
  name: string;
  addr: string;
}


/** Variables of the function's environment that are its AWS credentials (not for the command by default). */
const AWS_CREDENTIAL_VARS = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_SECURITY_TOKEN', 'AWS_CONTAINER_CREDENTIALS_FULL_URI', 'AWS_CONTAINER_AUTHORIZATION_TOKEN'];
/** Variables only the runtime needs. */
const RUNTIME_VARS = ['AWS_LAMBDA_RUNTIME_API', 'BOXER_SECRET'];

/** The root of the unpacked package (this file is dist/src/lambda/handler.js in it). */
const CODE_ROOT = path.resolve(__dirname, '../../..');

/** Where the command runs: the package's app/ (from --include), or a layer's /opt/app, else the package root. */
export function appDir(root = CODE_ROOT): string {
  for (const d of [path.join(root, 'app'), '/opt/app']) if (fs.existsSync(d)) return d;
  return root;
}

/** The command's environment: the function's, minus its credentials (unless asked), plus the event's. */
export function commandEnv(base: NodeJS.ProcessEnv, ev: LambdaEvent, root = CODE_ROOT): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  for (const k of RUNTIME_VARS) delete env[k];
  if (!ev.awsCredentials) for (const k of AWS_CREDENTIAL_VARS) delete env[k];
  // `boxer status` and `boxer ping` from inside the command.
  env.PATH = [path.join(root, 'bin'), base.PATH || '/usr/local/bin:/usr/bin:/bin'].join(':');
  // Marks the command and everything it starts, for the clean-up before the next invocation (reuse.ts).
  return { ...env, ...ev.env, [MARK_VAR]: MARK };
}

/** An error as the invocation's error: errorType `Boxer.<CODE>` (RIC reports the error's name). */
function invocationError(e: unknown): Error {
  if (e instanceof BoxerError) {
    const err = new Error(e.message);
    err.name = `Boxer.${e.code}`;
    return err;
  }
  if (e instanceof EventError) {
    const err = new Error(e.message);
    err.name = 'Boxer.BAD_EVENT';
    return err;
  }
  if (e instanceof SessionStopped) {
    const err = new Error(`the deadline (leaveBeforeMs before the function's timeout) came before the member had joined: check that the seed is reachable, or give the function more time`);
    err.name = 'Boxer.DEADLINE';
    return err;
  }
  return e instanceof Error ? e : new Error(String(e));
}

export async function handler(raw: unknown, context: LambdaContext): Promise<LambdaResult> {
  try {
    return await invoke(raw, context);
  } catch (e) {
    throw invocationError(e);
  }
}

async function invoke(raw: unknown, context: LambdaContext): Promise<LambdaResult> {
  const ev = decodeEvent(raw);
  const deadline = Date.now() + context.getRemainingTimeInMillis();
  cleanUpPrevious();
  const secret = await readLambdaSecret(ev.secret, process.env);
  const budget = deadline - ev.leaveBeforeMs - Date.now();
  if (budget < LAMBDA_MIN_RUN_MS) {
    throw new BoxerError(
      'USAGE',
      `leaveBeforeMs (${ev.leaveBeforeMs} ms) leaves ${Math.max(0, budget)} ms of the function's ${deadline - Date.now()} ms: raise the function's timeout or lower leaveBeforeMs`,
    );
  }
  const session = new MemberSession({
    seed: ev.seed,
    nodes: ev.nodes,
    name: ev.name,
    services: ev.services,
    secret: () => secret,
    joinTimeoutMs: Math.min(JOIN_TIMEOUT_MS, budget),
    cmd: ev.command,
    env: commandEnv(process.env, ev),
    cwd: appDir(),
    onCommandStart: noteGroup,
    run: ev.run,
    progress: (have, want) => log.info('waiting for members', { have, want }),
  });
  const timer = setTimeout(() => session.stop('deadline'), budget);
  let outcome: CommandOutcome | null = null;
  try {
    const self = await session.join();
    log.info('joined', { id: self.id, name: self.name, addr: self.addr, request: context.awsRequestId });
    try {
      await session.waitForMembers();
      outcome = await session.runCommand();
    } catch (e) {
      if (!(e instanceof SessionStopped)) throw e;
    }
    await session.leave(outcome);
    const result: LambdaResult = {
      exitCode: outcome?.exitCode ?? null,
      signal: outcome?.signal ?? null,
      reason: session.stopCause === 'deadline' ? 'deadline' : 'exited',
      name: self.name,
      addr: self.addr,
    };
    log.info('done', { ...result, request: context.awsRequestId });
    return result;
  } finally {
    clearTimeout(timer);
    await session.leave();
  }
}

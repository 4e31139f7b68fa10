/**
 * The Lambda handler's event (what `boxer lambda run` invokes each function with) and its validating decoder:
 * an event is untrusted JSON, checked field by field, with an error that names the field and says what to send.
 * docs/lambda.md#event documents the same fields.
 *
 * ```json
 * {"seed": "HOST:PORT", "nodes": 20, "command": ["./myapp/start.sh", "--flag"], "name": "optional",
 *  "service": "optional", "env": {"K": "V"}, "leaveBeforeMs": 20000,
 *  "secret": {"secretsManager": "ARN"} | {"ssmParameter": "NAME"},
 *  "run": "RUN-ID", "index": 3, "awsCredentials": false}
 * ```
 */
import { LAMBDA_LEAVE_BEFORE_MS, NAME_RE } from '../constants';
import { MAX_RUN_INDEX, RUN_ID_RE, type RunKey } from '../wire/messages';

/** Where the network secret comes from (never the secret itself: an event is logged and stored by Lambda). */
export type SecretSource = { secretsManager: string } | { ssmParameter: string };

/**
 * An event as sent (`boxer lambda run` writes it, decodeEvent reads it): the JSON above, with the fields that
 * decodeEvent fills in (services, env, leaveBeforeMs, awsCredentials) optional.
 */
export interface EventJson {
  seed: string;
  nodes: number;
  command: string[];
  name?: string;
  service?: string | string[];
  env?: Record<string, string>;
  leaveBeforeMs?: number;
  secret?: SecretSource;
  run?: string;
  index?: number;
  awsCredentials?: boolean;
}

/** An event as decodeEvent returns it: checked, with its defaults. */
export interface LambdaEvent {
  /** The seed, HOST:PORT. */
  seed: string;
  /** The barrier: the command starts once the network has this many members. */
  nodes: number;
  /** The command and its arguments (argv; no shell). */
  command: string[];
  /** This member's name (default node-ID). */
  name?: string;
  /** Service names this member provides ("service": one name or a list). */
  services: string[];
  /** Added to the command's environment. */
  env: Record<string, string>;
  /** The command is stopped and the member leaves this long before the function's deadline. */
  leaveBeforeMs: number;
  /** Where the network secret is; absent: BOXER_SECRET from the function's environment. */
  secret?: SecretSource;
  /** `run` + `index`: which member of which `boxer lambda run` (the seed admits each once). */
  run?: RunKey;
  /** Hand the function's AWS credentials (AWS_ACCESS_KEY_ID, ...) to the command; default false. */
  awsCredentials: boolean;
}

/** Default of `leaveBeforeMs` (src/constants/lambda.ts says why). */
export const DEFAULT_LEAVE_BEFORE_MS = LAMBDA_LEAVE_BEFORE_MS;
/** Most members one event may wait for (the seed's network is a /16 by default). */
const MAX_NODES = 65_534;
/** Bounds on the command line and environment an event carries (Lambda's event limit is 256 KB anyway). */
const MAX_ARGS = 1_024;
const MAX_ENV = 1_024;
const MAX_STRING = 32 * 1024;
const ENV_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Longest function timeout (15 minutes): leaveBeforeMs can be no larger. */
const MAX_LEAVE_BEFORE_MS = 15 * 60_000;

const FIELDS = ['seed', 'nodes', 'command', 'name', 'service', 'env', 'leaveBeforeMs', 'secret', 'run', 'index', 'awsCredentials'];

export class EventError extends Error {
  constructor(message: string) {
    super(`bad event: ${message}`);
    this.name = 'EventError';
  }
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function text(v: unknown, what: string, max = MAX_STRING): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > max) throw new EventError(`${what}: expected a non-empty string of at most ${max} characters`);
  return v;
}

function dnsName(v: unknown, what: string): string {
  const s = text(v, what, 63);
  if (!NAME_RE.test(s)) throw new EventError(`${what} ${JSON.stringify(s)}: expected a DNS label (lowercase letters, digits and -, at most 63 characters)`);
  return s;
}

function secretSource(v: unknown): SecretSource {
  if (!isObj(v)) throw new EventError('secret: expected {"secretsManager": "ARN"} or {"ssmParameter": "NAME"} (the secret itself never goes in the event)');
  const keys = Object.keys(v);
  if (keys.length !== 1) throw new EventError(`secret: expected exactly one of secretsManager, ssmParameter (got ${keys.join(', ') || 'none'})`);
  if ('secretsManager' in v) return { secretsManager: text(v.secretsManager, 'secret.secretsManager', 2048) };
  if ('ssmParameter' in v) return { ssmParameter: text(v.ssmParameter, 'secret.ssmParameter', 2048) };
  throw new EventError(`secret: unknown source ${JSON.stringify(keys[0])}; expected secretsManager or ssmParameter`);
}

function commandOf(v: unknown): string[] {
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_ARGS) throw new EventError(`command: expected a list ["program", "arg", ...] of 1 to ${MAX_ARGS} strings`);
  return v.map((a, i) => {
    if (typeof a !== 'string' || a.length > MAX_STRING || (i === 0 && a.length === 0)) throw new EventError(`command[${i}]: expected a string${i === 0 ? ' naming the program' : ''}`);
    return a;
  });
}

function envOf(v: unknown): Record<string, string> {
  const env: Record<string, string> = {};
  if (v === undefined) return env;
  if (!isObj(v)) throw new EventError('env: expected an object {"NAME": "value"}');
  const entries = Object.entries(v);
  if (entries.length > MAX_ENV) throw new EventError(`env: at most ${MAX_ENV} variables`);
  for (const [k, val] of entries) {
    if (!ENV_NAME_RE.test(k)) throw new EventError(`env: ${JSON.stringify(k)} is not a variable name`);
    if (typeof val !== 'string' || val.length > MAX_STRING) throw new EventError(`env.${k}: expected a string`);
    if (k === 'BOXER_SECRET') throw new EventError('env.BOXER_SECRET: the secret never goes in the event; use "secret": {"secretsManager": ARN} or {"ssmParameter": NAME}');
    env[k] = val;
  }
  return env;
}

function leaveBeforeOf(v: unknown): number {
  if (v === undefined) return DEFAULT_LEAVE_BEFORE_MS;
  if (!Number.isInteger(v) || (v as number) < 0 || (v as number) > MAX_LEAVE_BEFORE_MS) {
    throw new EventError(`leaveBeforeMs: expected whole milliseconds from 0 to ${MAX_LEAVE_BEFORE_MS}`);
  }
  return v as number;
}

function runOf(run: unknown, index: unknown): RunKey | undefined {
  if (run === undefined && index === undefined) return undefined;
  if (run === undefined || index === undefined) throw new EventError('run and index go together: give both (boxer lambda run sets them) or neither');
  if (typeof run !== 'string' || !RUN_ID_RE.test(run)) throw new EventError('run: expected a run id of 1-64 characters A-Z a-z 0-9 . _ -');
  if (!Number.isInteger(index) || (index as number) < 0 || (index as number) > MAX_RUN_INDEX) throw new EventError(`index: expected a member index from 0 to ${MAX_RUN_INDEX}`);
  return { id: run, index: index as number };
}

/** Checks an event and fills in the defaults; throws EventError saying which field is wrong and why. */
export function decodeEvent(v: unknown): LambdaEvent {
  if (typeof v === 'string') {
    try {
      v = JSON.parse(v);
    } catch {
      throw new EventError('not JSON');
    }
  }
  if (!isObj(v)) throw new EventError('expected a JSON object like {"seed": "HOST:PORT", "nodes": 2, "command": ["./start.sh"]}');
  const unknown = Object.keys(v).filter((k) => !FIELDS.includes(k));
  if (unknown.length) throw new EventError(`unknown field ${JSON.stringify(unknown[0])} (fields: ${FIELDS.join(', ')})`);

  const seed = text(v.seed, 'seed', 300);
  if (!/^\[?[^\]\s]+\]?:\d{1,5}$/.test(seed)) throw new EventError(`seed ${JSON.stringify(seed)}: expected HOST:PORT, e.g. seed.example.com:7070`);
  if (!Number.isInteger(v.nodes) || (v.nodes as number) < 1 || (v.nodes as number) > MAX_NODES) throw new EventError(`nodes: expected a whole number of members from 1 to ${MAX_NODES}`);
  const command = commandOf(v.command);

  const services = v.service === undefined ? [] : (Array.isArray(v.service) ? v.service : [v.service]).map((s, i) => dnsName(s, Array.isArray(v.service) ? `service[${i}]` : 'service'));

  const env = envOf(v.env);
  const leaveBeforeMs = leaveBeforeOf(v.leaveBeforeMs);
  const run = runOf(v.run, v.index);

  if (v.awsCredentials !== undefined && typeof v.awsCredentials !== 'boolean') throw new EventError('awsCredentials: expected true or false');

  return {
    seed,
    nodes: v.nodes as number,
    command,
    ...(v.name === undefined ? {} : { name: dnsName(v.name, 'name') }),
    services,
    env,
    leaveBeforeMs,
    ...(v.secret === undefined ? {} : { secret: secretSource(v.secret) }),
    ...(run ? { run } : {}),
    awsCredentials: v.awsCredentials === true,
  };
}

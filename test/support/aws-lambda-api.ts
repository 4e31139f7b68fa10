/**
 * Test support: the Lambda REST JSON API of test/support/aws-endpoint.ts (2015-03-31 functions, 2019-09-25
 * event-invoke-config), with the function life cycle the SDK's waiters watch: a new function is `Pending` and
 * an updated one `InProgress` for `settleMs`, and calls that AWS refuses meanwhile (another update, an
 * invocation of a pending function) answer ResourceConflictException as AWS does.
 * Invoke runs the test's `invoker`: `Event` answers 202 at once and runs it in the background (recorded in
 * `events`), `RequestResponse` answers with its result (`X-Amz-Function-Error` when the function failed).
 */
import crypto from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { errorReply, type Reply } from './aws-endpoint';

export interface InvokeResult {
  payload: Buffer;
  /** `Unhandled` (the function threw or crashed), as Lambda's X-Amz-Function-Error. */
  functionError?: string;
}
export type Invoker = (fn: FunctionRecord, payload: Buffer, type: 'Event' | 'RequestResponse') => Promise<InvokeResult>;

export interface FunctionRecord {
  name: string;
  /** FunctionConfiguration as the API returns it. */
  config: Record<string, unknown> & { FunctionArn: string; Environment?: { Variables?: Record<string, string> }; Timeout: number; MemorySize: number; Architectures: string[] };
  zip: Buffer;
  eventInvokeConfig: Record<string, unknown> | null;
  tags: Record<string, string>;
}

export interface LambdaState {
  functions: Map<string, FunctionRecord>;
  events: Array<{ fn: string; payload: Buffer; done: Promise<InvokeResult | Error> }>;
  invoker: Invoker | null;
  settleMs: number;
  roleUnassumable: number;
  /** How many of the next asynchronous events are delivered twice (Lambda's at-least-once delivery). */
  duplicates: number;
  account: string;
  region: string;
}

export interface LambdaRequest {
  method: string;
  /** Decoded path. */
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

const ROLE_RE = /^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]+$/;
const ASYNC_MAX = 256 * 1024;
const SYNC_MAX = 6 * 1024 * 1024;

const json = (status: number, o: unknown): Reply => ({ status, headers: { 'content-type': 'application/json' }, body: JSON.stringify(o) });
const err = (status: number, code: string, message: string) => errorReply('lambda', status, code, message);

/**
 * The Lambda API's routes, one branch per operation the deploy and invoke code calls (long because it is a route
 * table: each branch is a few lines of the published API's checks and answer).
 */
export async function lambdaApi(s: LambdaState, r: LambdaRequest, authorize: (action: string) => string | null): Promise<Reply> {
  const m = /^\/(2015-03-31|2019-09-25)\/functions(?:\/([^/]+))?(?:\/([a-z-]+))?\/?$/.exec(r.path);
  if (!m) return err(404, 'UnknownOperationException', `no such path ${r.path}`);
  const [, version, rawName, sub = ''] = m;
  const name = rawName?.startsWith('arn:') ? rawName.slice(rawName.lastIndexOf(':') + 1) : rawName;
  const route = `${r.method} ${version} ${rawName ? '{fn}' : ''}${sub ? '/' + sub : ''}`;
  const actions: Record<string, string> = {
    'POST 2015-03-31 ': 'lambda:CreateFunction',
    'GET 2015-03-31 {fn}': 'lambda:GetFunction',
    'DELETE 2015-03-31 {fn}': 'lambda:DeleteFunction',
    'GET 2015-03-31 {fn}/configuration': 'lambda:GetFunctionConfiguration',
    'PUT 2015-03-31 {fn}/configuration': 'lambda:UpdateFunctionConfiguration',
    'PUT 2015-03-31 {fn}/code': 'lambda:UpdateFunctionCode',
    'POST 2015-03-31 {fn}/invocations': 'lambda:InvokeFunction',
    'PUT 2019-09-25 {fn}/event-invoke-config': 'lambda:PutFunctionEventInvokeConfig',
    'GET 2019-09-25 {fn}/event-invoke-config': 'lambda:GetFunctionEventInvokeConfig',
    'DELETE 2019-09-25 {fn}/event-invoke-config': 'lambda:DeleteFunctionEventInvokeConfig',
  };
  const action = actions[route];
  if (!action) return err(404, 'UnknownOperationException', `no operation ${route}`);
  const denied = authorize(action);
  if (denied) return err(403, 'AccessDeniedException', denied);
  let input: Record<string, unknown> = {};
  if (r.body.length && action !== 'lambda:InvokeFunction') {
    try {
      input = JSON.parse(r.body.toString('utf8')) as Record<string, unknown>;
    } catch {
      return err(400, 'InvalidRequestContentException', 'Could not parse request body into json');
    }
  }
  if (action === 'lambda:CreateFunction') return create(s, input);
  const fn = s.functions.get(name!);
  const arn = `arn:aws:lambda:${s.region}:${s.account}:function:${name}`;
  if (!fn) return err(404, 'ResourceNotFoundException', `Function not found: ${arn}`);
  const busy = () => fn.config.LastUpdateStatus === 'InProgress' || fn.config.State === 'Pending';
  const conflict = () => err(409, 'ResourceConflictException', `The operation cannot be performed at this time. An update is in progress for resource: ${arn}`);
  switch (action) {
    case 'lambda:GetFunction':
      return json(200, { Configuration: fn.config, Code: { RepositoryType: 'S3', Location: `https://awslambda-${s.region}-tasks.s3.${s.region}.amazonaws.com/snapshots/${name}` }, Tags: fn.tags });
    case 'lambda:GetFunctionConfiguration':
      return json(200, fn.config);
    case 'lambda:DeleteFunction':
      s.functions.delete(fn.name);
      return { status: 204 };
    case 'lambda:UpdateFunctionCode': {
      if (busy()) return conflict();
      const zip = Buffer.from(String(input.ZipFile ?? ''), 'base64');
      if (!isZip(zip)) return err(400, 'InvalidParameterValueException', 'Could not unzip uploaded file. Please check your file, then try to upload again.');
      fn.zip = zip;
      Object.assign(fn.config, { CodeSize: zip.length, CodeSha256: sha(zip), ...(input.Architectures ? { Architectures: input.Architectures } : {}) });
      settle(s, fn);
      return json(200, fn.config);
    }
    case 'lambda:UpdateFunctionConfiguration': {
      if (busy()) return conflict();
      const bad = validate(input);
      if (bad) return err(400, 'InvalidParameterValueException', bad);
      const cfg = fn.config as Record<string, unknown>;
      for (const k of ['Role', 'Runtime', 'Handler', 'MemorySize', 'Timeout', 'EphemeralStorage', 'Environment', 'Description']) if (input[k] !== undefined) cfg[k] = input[k];
      settle(s, fn);
      return json(200, fn.config);
    }
    case 'lambda:PutFunctionEventInvokeConfig': {
      const retries = input.MaximumRetryAttempts;
      if (retries !== undefined && !(Number.isInteger(retries) && (retries as number) >= 0 && (retries as number) <= 2)) return err(400, 'InvalidParameterValueException', 'MaximumRetryAttempts must be between 0 and 2');
      fn.eventInvokeConfig = { FunctionArn: fn.config.FunctionArn, LastModified: Date.now() / 1000, MaximumRetryAttempts: retries ?? 2, MaximumEventAgeInSeconds: input.MaximumEventAgeInSeconds ?? 21600, DestinationConfig: input.DestinationConfig ?? { OnSuccess: {}, OnFailure: {} } };
      return json(200, fn.eventInvokeConfig);
    }
    case 'lambda:GetFunctionEventInvokeConfig':
      return fn.eventInvokeConfig ? json(200, fn.eventInvokeConfig) : err(404, 'ResourceNotFoundException', `The function ${arn} doesn't have an EventInvokeConfig`);
    case 'lambda:DeleteFunctionEventInvokeConfig':
      if (!fn.eventInvokeConfig) return err(404, 'ResourceNotFoundException', `The function ${arn} doesn't have an EventInvokeConfig`);
      fn.eventInvokeConfig = null;
      return { status: 204 };
    case 'lambda:InvokeFunction':
      return invoke(s, fn, r);
  }
  return err(500, 'ServiceException', `unhandled ${action}`);
}

function create(s: LambdaState, input: Record<string, unknown>): Reply {
  const name = String(input.FunctionName ?? '');
  if (!/^[a-zA-Z0-9-_]{1,64}$/.test(name)) return err(400, 'ValidationException', `1 validation error detected: Value '${name}' at 'functionName' failed to satisfy constraint`);
  if (s.functions.has(name)) return err(409, 'ResourceConflictException', `Function already exist: ${name}`);
  const bad = validate(input) ?? (typeof input.Role !== 'string' ? 'Role is required' : null);
  if (bad) return err(400, 'InvalidParameterValueException', bad);
  if (s.roleUnassumable > 0) {
    s.roleUnassumable--;
    return err(400, 'InvalidParameterValueException', 'The role defined for the function cannot be assumed by Lambda.');
  }
  const zip = Buffer.from(String((input.Code as { ZipFile?: string } | undefined)?.ZipFile ?? ''), 'base64');
  if (!isZip(zip)) return err(400, 'InvalidParameterValueException', 'Could not unzip uploaded file. Please check your file, then try to upload again.');
  const arn = `arn:aws:lambda:${s.region}:${s.account}:function:${name}`;
  const fn: FunctionRecord = {
    name,
    zip,
    eventInvokeConfig: null,
    tags: (input.Tags as Record<string, string>) ?? {},
    config: {
      FunctionName: name,
      FunctionArn: arn,
      Runtime: input.Runtime,
      Role: input.Role,
      Handler: input.Handler,
      CodeSize: zip.length,
      CodeSha256: sha(zip),
      Description: input.Description ?? '',
      Timeout: (input.Timeout as number) ?? 3,
      MemorySize: (input.MemorySize as number) ?? 128,
      LastModified: new Date().toISOString().replace('Z', '+0000'),
      Version: '$LATEST',
      Environment: (input.Environment as { Variables?: Record<string, string> }) ?? { Variables: {} },
      State: 'Pending',
      StateReason: 'The function is being created.',
      StateReasonCode: 'Creating',
      PackageType: 'Zip',
      Architectures: (input.Architectures as string[]) ?? ['x86_64'],
      EphemeralStorage: input.EphemeralStorage ?? { Size: 512 },
      RevisionId: crypto.randomUUID(),
    },
  };
  s.functions.set(name, fn);
  setTimeout(() => Object.assign(fn.config, { State: 'Active', StateReason: undefined, StateReasonCode: undefined, LastUpdateStatus: 'Successful' }), s.settleMs).unref();
  return json(201, fn.config);
}

function settle(s: LambdaState, fn: FunctionRecord): void {
  Object.assign(fn.config, { LastUpdateStatus: 'InProgress', LastModified: new Date().toISOString().replace('Z', '+0000'), RevisionId: crypto.randomUUID() });
  setTimeout(() => (fn.config.LastUpdateStatus = 'Successful'), s.settleMs).unref();
}

/** The checks AWS makes on the settings Boxer sends (ranges from the Lambda API reference). */
function validate(i: Record<string, unknown>): string | null {
  if (i.Runtime !== undefined && i.Runtime !== 'nodejs22.x' && i.Runtime !== 'nodejs24.x') return `The runtime parameter of ${String(i.Runtime)} is not supported here`;
  if (i.MemorySize !== undefined && !((i.MemorySize as number) >= 128 && (i.MemorySize as number) <= 10240)) return 'MemorySize must be between 128 and 10240';
  if (i.Timeout !== undefined && !((i.Timeout as number) >= 1 && (i.Timeout as number) <= 900)) return 'Timeout must be between 1 and 900';
  const eph = (i.EphemeralStorage as { Size?: number } | undefined)?.Size;
  if (eph !== undefined && !(eph >= 512 && eph <= 10240)) return 'EphemeralStorage.Size must be between 512 and 10240';
  for (const a of (i.Architectures as string[] | undefined) ?? []) if (a !== 'x86_64' && a !== 'arm64') return `Architecture ${a} is not supported`;
  if (i.Role !== undefined && !ROLE_RE.test(String(i.Role))) return `1 validation error detected: Value '${String(i.Role)}' at 'role' failed to satisfy constraint`;
  return null;
}

async function invoke(s: LambdaState, fn: FunctionRecord, r: LambdaRequest): Promise<Reply> {
  const type = String(r.headers['x-amz-invocation-type'] ?? 'RequestResponse');
  if (type !== 'Event' && type !== 'RequestResponse' && type !== 'DryRun') return err(400, 'InvalidParameterValueException', `Unsupported invocation type ${type}`);
  if (fn.config.State !== 'Active') return err(409, 'ResourceConflictException', `The operation cannot be performed at this time. The function is currently in the following state: ${String(fn.config.State)}`);
  const limit = type === 'Event' ? ASYNC_MAX : SYNC_MAX;
  if (r.body.length > limit) return err(413, 'RequestEntityTooLargeException', `${r.body.length} byte payload is too large for the ${type} invocation type (limit ${limit} bytes)`);
  try {
    if (r.body.length) JSON.parse(r.body.toString('utf8'));
  } catch {
    return err(400, 'InvalidRequestContentException', 'Could not parse request body into json');
  }
  if (type === 'DryRun') return { status: 204 };
  if (!s.invoker) return err(500, 'ServiceException', 'this test endpoint has no invoker');
  if (type === 'Event') {
    // Lambda's asynchronous delivery: retried after a function error as the event invoke configuration says
    // (twice without one), and, being at least once, sometimes delivered twice (`duplicates`).
    const invoker = s.invoker;
    const deliver = async (): Promise<InvokeResult | Error> => {
      const retries = Number(fn.eventInvokeConfig?.MaximumRetryAttempts ?? 2);
      let last: InvokeResult | Error = new Error('not delivered');
      for (let attempt = 0; attempt <= retries; attempt++) {
        last = await invoker(fn, r.body, 'Event').catch((e: Error) => e);
        if (!(last instanceof Error) && !last.functionError) break;
      }
      return last;
    };
    s.events.push({ fn: fn.name, payload: r.body, done: deliver() });
    if (s.duplicates > 0) {
      s.duplicates--;
      s.events.push({ fn: fn.name, payload: r.body, done: deliver() });
    }
    return { status: 202, headers: { 'x-amzn-requestid': crypto.randomUUID() } };
  }
  const out = await s.invoker(fn, r.body, 'RequestResponse');
  return { status: 200, headers: { 'x-amz-executed-version': '$LATEST', 'content-type': 'application/json', ...(out.functionError ? { 'x-amz-function-error': out.functionError } : {}) }, body: out.payload };
}

function isZip(b: Buffer): boolean {
  return b.length >= 22 && b.readUInt32LE(0) === 0x04034b50;
}
function sha(b: Buffer): string {
  return crypto.createHash('sha256').update(b).digest('base64');
}

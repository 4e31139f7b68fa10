/**
 * Test support: a local HTTP endpoint speaking the AWS APIs `boxer lambda deploy/run/destroy` call, so that
 * the real AWS SDK v3 (pointed here with --endpoint-url) runs unchanged against it:
 *   - Lambda, REST JSON (2015-03-31 functions and 2019-09-25 event-invoke-config): test/support/aws-lambda-api.ts;
 *   - Secrets Manager and SSM, JSON 1.1 (`X-Amz-Target: secretsmanager.X` / `AmazonSSM.X`);
 *   - IAM, the query protocol (form-encoded `Action=...`, XML answers).
 * Every request must carry a valid SigV4 signature made with one of the test's keys (test/support/aws-sigv4.ts),
 * and the credential scope's service must be the API called; answers and errors have the shapes the SDK
 * parses (error codes in `x-amzn-ErrorType` / `__type` / `<Code>` as each protocol puts them).
 * `deny` makes chosen IAM actions answer AccessDenied as AWS does, to test what a denied deployer is told.
 * Nothing here is Boxer: Invoke calls the test's `invoker` (the lab test starts the real handler through the
 * Lambda Runtime API).
 */
import http from 'node:http';
import crypto from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { verifySigV4, type SignedBy } from './aws-sigv4';
import { lambdaApi, type FunctionRecord, type Invoker, type LambdaState } from './aws-lambda-api';

export type { FunctionRecord, Invoker } from './aws-lambda-api';

/** The test's credentials (give them to the SDK as AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY). */
export const TEST_ACCESS_KEY_ID = 'AKIABOXERTESTKEY0001';
export const TEST_SECRET_ACCESS_KEY = 'boxer/test/secret/access/key/0000000000';
export const TEST_ACCOUNT = '123456789012';
export const TEST_REGION = 'eu-central-1';

export interface AwsEndpointOptions {
  /** IAM actions answered with AccessDenied, e.g. `iam:PutRolePolicy`. */
  deny?: Iterable<string>;
  invoker?: Invoker;
  /** A new or updated function stays Pending / InProgress this long (the SDK's waiters must wait). */
  settleMs?: number;
  /** CreateFunction answers "role cannot be assumed" this many times first (IAM propagation). */
  roleUnassumableTimes?: number;
  /** The next this many asynchronous events are delivered twice (Lambda delivers at least once). */
  duplicateEvents?: number;
}

/** One call as the endpoint saw it: the IAM action and who signed it. */
export interface CallRecord {
  action: string;
  signedBy: SignedBy;
}

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: Buffer | string;
}

export class AwsEndpoint {
  readonly calls: CallRecord[] = [];
  readonly deny: Set<string>;
  readonly secrets = new Map<string, { arn: string; value: string; tags: Record<string, string> }>();
  readonly parameters = new Map<string, { value: string; type: string }>();
  /** Inline role policies, by `ROLE/POLICY`. */
  readonly rolePolicies = new Map<string, string>();
  readonly lambda: LambdaState;
  url = '';
  private server: http.Server | null = null;
  private readonly extra: http.Server[] = [];
  private readonly keys = new Map([[TEST_ACCESS_KEY_ID, TEST_SECRET_ACCESS_KEY]]);

  constructor(opts: AwsEndpointOptions = {}) {
    this.deny = new Set(opts.deny ?? []);
    this.lambda = { functions: new Map(), events: [], invoker: opts.invoker ?? null, settleMs: opts.settleMs ?? 300, roleUnassumable: opts.roleUnassumableTimes ?? 0, duplicates: opts.duplicateEvents ?? 0, account: TEST_ACCOUNT, region: TEST_REGION };
  }

  get functions(): Map<string, FunctionRecord> {
    return this.lambda.functions;
  }

  private readonly onRequest = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      this.handle(req, Buffer.concat(chunks))
        .catch((e: Error): Reply => ({ status: 500, headers: { 'x-amzn-ErrorType': 'ServiceException' }, body: JSON.stringify({ Message: e.stack }) }))
        .then((r) => {
          res.writeHead(r.status, { 'x-amzn-RequestId': crypto.randomUUID(), ...(r.headers ?? {}) });
          res.end(r.body ?? '');
        });
    });
  };

  /** Listens on loopback; resolves the URL to give the SDK. */
  async start(): Promise<string> {
    this.server = http.createServer(this.onRequest);
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  /** Also listens on a Unix socket (the lab relays its hosts' connections to it: test/lab/lambda-e2e.test.ts). */
  async listenUnix(file: string): Promise<void> {
    const s = http.createServer(this.onRequest);
    await new Promise<void>((r) => s.listen(file, r));
    this.extra.push(s);
  }

  /** Waits for every asynchronous invocation started so far to end. */
  async settled(): Promise<void> {
    await Promise.allSettled(this.lambda.events.map((e) => e.done));
  }

  async close(): Promise<void> {
    for (const s of [this.server, ...this.extra]) {
      if (!s) continue;
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
  }

  /** Environment for a child process whose SDK should come here. */
  env(): Record<string, string> {
    return { AWS_ACCESS_KEY_ID: TEST_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: TEST_SECRET_ACCESS_KEY, AWS_REGION: TEST_REGION, AWS_EC2_METADATA_DISABLED: 'true', AWS_CONFIG_FILE: '/nonexistent', AWS_SHARED_CREDENTIALS_FILE: '/nonexistent' };
  }

  private async handle(req: http.IncomingMessage, body: Buffer): Promise<Reply> {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const rawPath = q < 0 ? url : url.slice(0, q);
    const query = q < 0 ? '' : url.slice(q + 1);
    const target = String(req.headers['x-amz-target'] ?? '');
    const api = rawPath.startsWith('/2015-03-31/') || rawPath.startsWith('/2019-09-25/') ? 'lambda' : target.startsWith('secretsmanager.') ? 'secretsmanager' : target.startsWith('AmazonSSM.') ? 'ssm' : 'iam';
    const sig = verifySigV4({ method: req.method ?? 'GET', rawPath, query, headers: req.headers, body }, this.keys);
    const fail = (status: number, code: string, message: string): Reply => errorReply(api, status, code, message);
    if (!sig.ok) return fail(403, sig.code === 'InvalidSignature' ? 'InvalidSignatureException' : sig.code === 'UnrecognizedClient' ? 'UnrecognizedClientException' : sig.code, sig.message);
    if (sig.by.service !== api) return fail(403, 'InvalidSignatureException', `Credential should be scoped to correct service: '${api}'.`);
    if (api === 'lambda') {
      return lambdaApi(this.lambda, { method: req.method ?? 'GET', path: decodeURIComponent(rawPath), query: new URLSearchParams(query), headers: req.headers, body }, (action) => this.authorize(action, sig.by));
    }
    if (api === 'iam') {
      const form = new URLSearchParams(body.toString('utf8'));
      const action = `iam:${form.get('Action') ?? ''}`;
      const denied = this.authorize(action, sig.by);
      return denied ? fail(403, 'AccessDenied', denied) : this.iam(form);
    }
    const op = target.slice(target.indexOf('.') + 1);
    const action = `${api}:${op}`;
    const denied = this.authorize(action, sig.by);
    if (denied) return fail(400, 'AccessDeniedException', denied);
    let input: Record<string, unknown>;
    try {
      input = JSON.parse(body.toString('utf8') || '{}') as Record<string, unknown>;
    } catch {
      return fail(400, 'SerializationException', 'body is not JSON');
    }
    return api === 'secretsmanager' ? this.secretsManager(op, input) : this.ssm(op, input);
  }

  /** Records the call; an error message when the action is denied. */
  private authorize(action: string, by: SignedBy): string | null {
    this.calls.push({ action, signedBy: by });
    if (!this.deny.has(action)) return null;
    return `User: arn:aws:iam::${TEST_ACCOUNT}:user/deployer is not authorized to perform: ${action} because no identity-based policy allows the ${action} action`;
  }

  private secretsManager(op: string, input: Record<string, unknown>): Reply {
    const id = String(input.SecretId ?? input.Name ?? '');
    const find = () => this.secrets.get(id) ? [id, this.secrets.get(id)!] as const : [...this.secrets.entries()].find(([, s]) => s.arn === id);
    const missing = () => errorReply('secretsmanager', 400, 'ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
    const ok = (o: unknown): Reply => ({ status: 200, headers: { 'content-type': 'application/x-amz-json-1.1' }, body: JSON.stringify(o) });
    switch (op) {
      case 'CreateSecret': {
        if (this.secrets.has(id)) return errorReply('secretsmanager', 400, 'ResourceExistsException', `The operation failed because the secret ${id} already exists.`);
        if (typeof input.SecretString !== 'string') return errorReply('secretsmanager', 400, 'InvalidParameterException', 'SecretString is required');
        const arn = `arn:aws:secretsmanager:${TEST_REGION}:${TEST_ACCOUNT}:secret:${id}-${crypto.randomBytes(3).toString('hex')}`;
        const tags = Object.fromEntries(((input.Tags as Array<{ Key: string; Value: string }>) ?? []).map((t) => [t.Key, t.Value]));
        this.secrets.set(id, { arn, value: input.SecretString, tags });
        return ok({ ARN: arn, Name: id, VersionId: crypto.randomUUID() });
      }
      case 'DescribeSecret': {
        const f = find();
        return f ? ok({ ARN: f[1].arn, Name: f[0], Tags: Object.entries(f[1].tags).map(([Key, Value]) => ({ Key, Value })) }) : missing();
      }
      case 'PutSecretValue': {
        const f = find();
        if (!f) return missing();
        f[1].value = String(input.SecretString);
        return ok({ ARN: f[1].arn, Name: f[0], VersionId: crypto.randomUUID(), VersionStages: ['AWSCURRENT'] });
      }
      case 'GetSecretValue': {
        const f = find();
        return f ? ok({ ARN: f[1].arn, Name: f[0], SecretString: f[1].value, VersionId: crypto.randomUUID(), VersionStages: ['AWSCURRENT'], CreatedDate: Date.now() / 1000 }) : missing();
      }
      case 'DeleteSecret': {
        const f = find();
        if (!f) return missing();
        this.secrets.delete(f[0]);
        return ok({ ARN: f[1].arn, Name: f[0], DeletionDate: Date.now() / 1000 });
      }
      default:
        return errorReply('secretsmanager', 400, 'UnknownOperationException', `unknown operation ${op}`);
    }
  }

  private ssm(op: string, input: Record<string, unknown>): Reply {
    const name = String(input.Name ?? '');
    const ok = (o: unknown): Reply => ({ status: 200, headers: { 'content-type': 'application/x-amz-json-1.1' }, body: JSON.stringify(o) });
    const p = this.parameters.get(name);
    switch (op) {
      case 'PutParameter':
        if (p && input.Overwrite !== true) return errorReply('ssm', 400, 'ParameterAlreadyExists', 'The parameter already exists.');
        this.parameters.set(name, { value: String(input.Value), type: String(input.Type ?? 'String') });
        return ok({ Version: 1, Tier: 'Standard' });
      case 'GetParameter':
        if (!p) return errorReply('ssm', 400, 'ParameterNotFound', '');
        return ok({ Parameter: { Name: name, Type: p.type, Value: p.value, Version: 1, ARN: `arn:aws:ssm:${TEST_REGION}:${TEST_ACCOUNT}:parameter${name}`, DataType: 'text' } });
      case 'DeleteParameter':
        if (!p) return errorReply('ssm', 400, 'ParameterNotFound', '');
        this.parameters.delete(name);
        return ok({});
      default:
        return errorReply('ssm', 400, 'UnknownOperationException', `unknown operation ${op}`);
    }
  }

  private iam(form: URLSearchParams): Reply {
    const action = form.get('Action') ?? '';
    const key = `${form.get('RoleName')}/${form.get('PolicyName')}`;
    const reply = (inner = ''): Reply => ({
      status: 200,
      headers: { 'content-type': 'text/xml' },
      body: `<${action}Response xmlns="https://iam.amazonaws.com/doc/2010-05-08/">${inner ? `<${action}Result>${inner}</${action}Result>` : ''}<ResponseMetadata><RequestId>${crypto.randomUUID()}</RequestId></ResponseMetadata></${action}Response>`,
    });
    const noSuch = () => errorReply('iam', 404, 'NoSuchEntity', `The role policy with name ${form.get('PolicyName')} cannot be found.`);
    if (form.get('Version') !== '2010-05-08') return errorReply('iam', 400, 'InvalidAction', 'Version 2010-05-08 expected');
    switch (action) {
      case 'PutRolePolicy': {
        const doc = form.get('PolicyDocument') ?? '';
        try {
          JSON.parse(doc);
        } catch {
          return errorReply('iam', 400, 'MalformedPolicyDocument', 'Syntax errors in policy.');
        }
        this.rolePolicies.set(key, doc);
        return reply();
      }
      case 'GetRolePolicy': {
        const doc = this.rolePolicies.get(key);
        return doc === undefined ? noSuch() : reply(`<RoleName>${form.get('RoleName')}</RoleName><PolicyName>${form.get('PolicyName')}</PolicyName><PolicyDocument>${encodeURIComponent(doc)}</PolicyDocument>`);
      }
      case 'DeleteRolePolicy':
        if (!this.rolePolicies.delete(key)) return noSuch();
        return reply();
      default:
        return errorReply('iam', 400, 'InvalidAction', `Could not find operation ${action} for version 2010-05-08`);
    }
  }
}

/** An error in the shape each protocol uses. */
export function errorReply(api: string, status: number, code: string, message: string): Reply {
  if (api === 'iam') {
    const xml = `<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type><Code>${code}</Code><Message>${escapeXml(message)}</Message></Error><RequestId>${crypto.randomUUID()}</RequestId></ErrorResponse>`;
    return { status, headers: { 'content-type': 'text/xml' }, body: xml };
  }
  if (api === 'lambda') return { status, headers: { 'x-amzn-ErrorType': code, 'content-type': 'application/json' }, body: JSON.stringify({ Type: 'User', Message: message }) };
  return { status, headers: { 'content-type': 'application/x-amz-json-1.1' }, body: JSON.stringify({ __type: code, Message: message }) };
}

function escapeXml(s: string): string {
  return s.replace(/[<>&'"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

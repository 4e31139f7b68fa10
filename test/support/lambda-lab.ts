/**
 * Test support: Boxer on "AWS Lambda" inside the lab, for test/lab/lambda-e2e.test.ts and the bench.
 *   - the AWS endpoint (test/support/aws-endpoint.ts) is reachable on the lab's internet like a public AWS
 *     endpoint: a relay on host `vm2` (port RELAY_PORT) passes connections to the endpoint's Unix socket;
 *   - a seed runs on host `seed`;
 *   - Invoke runs the handler of the deployed zip in Lambda execution environments driven through the Lambda
 *     Runtime API (test/support/lambda-runtime.ts) on the lab's function nodes, behind their NATs: one
 *     environment per concurrent invocation, reused when idle, as Lambda does; the functions reach the
 *     endpoint (Secrets Manager) through their NATs at AWS_ENDPOINT_URL;
 *   - `boxer lambda ...` commands run on `vm2`, the user's machine, as the unprivileged user.
 * Everything started here is stopped by close(), also when a test fails.
 */
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import type { Lab } from '../../overlay';
import { AwsEndpoint, type FunctionRecord, type Invoker } from './aws-endpoint';
import { startEnvironment, unpack, type LambdaEnvironment } from './lambda-runtime';

export const ROOT = path.resolve(__dirname, '../../..');
export const BOXER = path.join(ROOT, 'bin/boxer');
/** Where the endpoint appears on the lab's internet (vm2's public address). */
const RELAY_PORT = 4566;
const SEED_PORT = 7470;
/** Bound on a process's start-up (against hangs only: the machine is shared). */
const START_MS = 20_000;

const RELAY_JS = `const net=require('net');const [sock,port]=process.argv.slice(1);
net.createServer(c=>{const u=net.connect(sock);c.pipe(u).pipe(c);c.on('error',()=>u.destroy());u.on('error',()=>c.destroy());})
.listen(+port,'0.0.0.0',()=>console.log('relaying'));`;

export interface CliResult {
  code: number | null;
  out: string;
  err: string;
}

/** One invocation as the lab ran it: where, when it was accepted and how it ended. */
export interface Invocation {
  node: string;
  payload: Record<string, unknown>;
  /** When the endpoint accepted the Invoke (epoch ms). */
  acceptedAt: number;
  /** When an execution environment took it (after the queue and, for a cold start, the environment's start). */
  startedAt: number;
  result?: unknown;
  error?: { errorType: string; errorMessage: string };
}

export class LambdaLab {
  readonly ep: AwsEndpoint;
  readonly dir: string;
  readonly secretFile: string;
  readonly seedAddr: string;
  readonly endpointUrl: string;
  readonly invocations: Invocation[] = [];
  private readonly children: ChildProcess[] = [];
  /** Idle environments by code hash; every environment made, to close them. */
  private readonly idle = new Map<string, Array<{ env: LambdaEnvironment; node: string }>>();
  private readonly all: Array<{ env: LambdaEnvironment; node: string }> = [];
  private readonly freeNodes: string[];
  private readonly unpacked = new Map<string, Promise<string>>();
  private seedErr = '';

  constructor(
    private readonly lab: Lab,
    /** The function nodes environments are placed on, one each, in this order. */
    nodes: string[],
    /**
     * How long Lambda's asynchronous queue holds an event before starting it (by the member's index; none by
     * default): a member started later has a later deadline.
     */
    private readonly queueDelayMs: (index: number) => number = () => 0,
  ) {
    this.freeNodes = [...nodes];
    this.dir = fs.mkdtempSync(path.join('/tmp', `${lab.prefix}-lambda-`));
    fs.chmodSync(this.dir, 0o755);
    this.secretFile = path.join(this.dir, 'net.key');
    fs.writeFileSync(this.secretFile, `lambda e2e secret ${crypto.randomBytes(8).toString('hex')}`, { mode: 0o600 });
    // The seed and `boxer lambda` run as the lab's unprivileged user, who must own it (0600).
    const owner = fs.statSync(lab.node('vm2').tmpdir!);
    fs.chownSync(this.secretFile, owner.uid, owner.gid);
    this.seedAddr = `${lab.node('seed').address}:${SEED_PORT}`;
    this.endpointUrl = `http://${lab.node('vm2').address}:${RELAY_PORT}`;
    this.ep = new AwsEndpoint({ settleMs: 200, invoker: this.invoker });
  }

  async start(): Promise<void> {
    await this.ep.start();
    const sock = path.join(this.dir, 'aws.sock');
    await this.ep.listenUnix(sock);
    await this.started(this.lab.spawn('vm2', process.execPath, ['-e', RELAY_JS, sock, String(RELAY_PORT)], { asRoot: true }), /relaying/);
    const seed = this.lab.spawn('seed', process.execPath, [BOXER, 'seed', '--listen', this.seedAddr, '--secret-file', this.secretFile], { env: { BOXER_LOG: 'info' } });
    seed.stderr!.on('data', (d: Buffer) => (this.seedErr += d.toString()));
    await this.started(seed, /listening on/);
  }

  /** `boxer lambda ARGS -- CMD` on vm2 (the user's machine) with the test's AWS credentials. */
  async cli(args: string[], timeoutMs: number): Promise<CliResult> {
    const dd = args.includes('--') ? args.indexOf('--') : args.length;
    const argv = [...args.slice(0, dd), '--endpoint-url', this.endpointUrl, ...args.slice(dd)];
    const r = await this.lab.exec('vm2', process.execPath, [BOXER, 'lambda', ...argv], {
      timeoutMs,
      env: this.ep.env(),
    });
    return { code: r.code, out: r.stdout, err: r.stderr };
  }

  /** Lambda's side of Invoke: an idle environment of this code, else a new one on the next function node. */
  private readonly invoker: Invoker = async (fn, payload) => {
    const acceptedAt = Date.now();
    const delay = this.queueDelayMs(Number((JSON.parse(payload.toString()) as { index?: number }).index));
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    const key = String(fn.config.CodeSha256);
    const slot = this.idle.get(key)?.pop() ?? (await this.newEnvironment(fn));
    const inv: Invocation = { node: slot.node, payload: JSON.parse(payload.toString()) as Record<string, unknown>, acceptedAt, startedAt: Date.now() };
    this.invocations.push(inv);
    try {
      const r = await slot.env.invoke(inv.payload, { timeoutMs: fn.config.Timeout * 1000 });
      if (r.ok) inv.result = r.result;
      else inv.error = r.error;
      return r.ok ? { payload: Buffer.from(JSON.stringify(r.result)) } : { payload: Buffer.from(JSON.stringify(r.error)), functionError: 'Unhandled' };
    } finally {
      const list = this.idle.get(key) ?? [];
      list.push(slot);
      this.idle.set(key, list);
    }
  };

  private async newEnvironment(fn: FunctionRecord): Promise<{ env: LambdaEnvironment; node: string }> {
    const node = this.freeNodes.shift();
    if (!node) throw new Error('no lab function node left for another concurrent environment');
    const codeDir = await this.codeDir(fn);
    const slot = { env: await startEnvironment({ codeDir, env: this.functionEnv(fn), lab: this.lab, node, timeoutS: fn.config.Timeout, functionName: fn.name }), node };
    this.all.push(slot);
    return slot;
  }

  /**
   * Starts `n` execution environments of the deployed function ahead of its invocations (as Lambda's
   * provisioned concurrency does), so that the invocations start warm whatever the machine's load.
   */
  async prewarm(functionName: string, n: number): Promise<void> {
    const fn = this.ep.functions.get(functionName);
    if (!fn) throw new Error(`no function ${functionName} deployed`);
    const made = await Promise.all(Array.from({ length: n }, () => this.newEnvironment(fn)));
    const key = String(fn.config.CodeSha256);
    this.idle.set(key, [...(this.idle.get(key) ?? []), ...made]);
  }

  /** The function's code, unpacked once per code hash (the environment makes it read-only, as /var/task). */
  private codeDir(fn: FunctionRecord): Promise<string> {
    const key = String(fn.config.CodeSha256);
    let dir = this.unpacked.get(key);
    if (!dir) {
      const zip = path.join(this.dir, `code-${this.unpacked.size}.zip`);
      fs.writeFileSync(zip, fn.zip);
      dir = unpack(zip, this.dir);
      this.unpacked.set(key, dir);
    }
    return dir;
  }

  /** What Lambda puts in a function's environment that matters here, plus the function's own variables. */
  private functionEnv(fn: FunctionRecord): Record<string, string> {
    return {
      ...(fn.config.Environment?.Variables ?? {}),
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.config.MemorySize),
      AWS_ENDPOINT_URL: this.endpointUrl,
      // The lab runs the functions on this machine's Node.js 20 (Lambda's nodejs22.x would not warn).
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      BOXER_LOG: 'info',
      ...this.ep.env(),
    };
  }

  /** What each environment's runtime, handler and command wrote (Lambda's log stream), by node. */
  logs(): Map<string, string> {
    return new Map(this.all.map((e) => [e.node, e.env.logs()]));
  }

  /** The seed's log of joins and leaves: when (epoch ms) each member, by name, joined or left. */
  seedLog(): Array<{ at: number; what: 'joined' | 'left' | 'died'; name: string }> {
    const out: Array<{ at: number; what: 'joined' | 'left' | 'died'; name: string }> = [];
    const re = /^ts=(\S+) .*msg="member (joined|left|died)".* name=(\S+)/gm;
    for (const m of this.seedErr.matchAll(re)) out.push({ at: Date.parse(m[1]), what: m[2] as 'joined' | 'left' | 'died', name: m[3] });
    return out;
  }

  private started(child: ChildProcess, re: RegExp): Promise<void> {
    this.children.push(child);
    let out = '';
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${re} not seen: ${out} ${this.seedErr}`)), START_MS);
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        if (re.test(out)) {
          clearTimeout(t);
          resolve();
        }
      });
    });
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.all.map((e) => e.env.close()));
    for (const c of this.children) c.kill('SIGKILL');
    await this.ep.close();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

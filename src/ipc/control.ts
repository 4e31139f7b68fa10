/**
 * The agent's local control socket, for `boxer status`, `boxer ping` and tests: a Unix stream socket under
 * $TMPDIR/boxer-UID, one JSON request per line, one JSON reply per line. Only this user can reach it (the
 * directory is 0700).
 *
 * Request: `{"op": "status"}`, `{"op": "ping", "name": "fn3"}`. Reply: `{"ok": true, ...}` or
 * `{"ok": false, "error": "what happened and what to do"}`.
 */
import net from 'node:net';
import { listenUnix, closeUnix } from './unix';
import fs from 'node:fs';
import path from 'node:path';
import { runtimeDir } from '../util/paths';
import { BoxerError } from '../util/errors';
import { logger } from '../util/log';
import { CONTROL_TIMEOUT_MS, MAX_CONTROL_REQUEST } from '../constants';

const log = logger('control');

export type ControlRequest = { op: 'status' } | { op: 'ping'; name: string } | { op: string; [k: string]: unknown };
export type ControlReply = { ok: true; [k: string]: unknown } | { ok: false; error: string };
export type ControlHandler = (req: ControlRequest) => Promise<ControlReply>;

export class ControlServer {
  private server: net.Server | null = null;
  constructor(
    readonly path: string,
    private readonly handler: ControlHandler,
  ) {}

  async start(): Promise<void> {
    this.server = await listenUnix(this.path, (sock) => this.serve(sock));
  }

  private serve(sock: net.Socket): void {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('error', () => {});
    sock.on('data', (d: string) => {
      buf += d;
      if (buf.length > MAX_CONTROL_REQUEST) {
        sock.end(JSON.stringify({ ok: false, error: 'request too long' }) + '\n');
        return;
      }
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let req: ControlRequest;
        try {
          req = JSON.parse(line) as ControlRequest;
          if (typeof req !== 'object' || req === null || typeof req.op !== 'string') throw new Error('no op');
        } catch {
          sock.write(JSON.stringify({ ok: false, error: 'malformed request: expected one JSON object with "op" per line' }) + '\n');
          continue;
        }
        this.handler(req)
          .catch((e: Error): ControlReply => ({ ok: false, error: e.message }))
          .then((reply) => {
            if (!sock.destroyed) sock.write(JSON.stringify(reply) + '\n');
          });
      }
    });
  }

  async close(): Promise<void> {
    await closeUnix(this.server, this.path);
  }
}

/** Sends one request to the agent at `socketPath` and returns its reply. */
export function controlRequest(socketPath: string, req: ControlRequest, timeoutMs = CONTROL_TIMEOUT_MS): Promise<ControlReply> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(socketPath);
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new BoxerError('NO_AGENT', `the agent at ${socketPath} did not answer within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(JSON.stringify(req) + '\n'));
    sock.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        sock.end();
        try {
          resolve(JSON.parse(buf.slice(0, nl)) as ControlReply);
        } catch {
          reject(new BoxerError('NO_AGENT', `the agent at ${socketPath} answered something that is not JSON`));
        }
      }
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new BoxerError('NO_AGENT', `cannot reach the agent at ${socketPath}: ${e.code ?? e.message}. Is \`boxer run\` still running?`));
    });
  });
}

/** The agent to talk to: --agent, else $BOXER_AGENT, else the only live agent of this user under $TMPDIR. */
export async function findAgent(explicit?: string): Promise<string> {
  if (explicit) return explicit;
  if (process.env.BOXER_AGENT) return process.env.BOXER_AGENT;
  const dir = runtimeDir();
  const candidates = fs.readdirSync(dir).filter((f) => /^agent-.*\.sock$/.test(f)).map((f) => path.join(dir, f));
  const live: string[] = [];
  for (const c of candidates) {
    try {
      await controlRequest(c, { op: 'status' }, 1000);
      live.push(c);
    } catch {
      log.debug('stale agent socket', { path: c });
    }
  }
  if (live.length === 1) return live[0];
  if (live.length === 0) {
    throw new BoxerError('NO_AGENT', `no Boxer agent is running for this user under ${dir}: start one with \`boxer run\` (or \`boxer seed -- CMD\`), or give --agent PATH`);
  }
  throw new BoxerError('NO_AGENT', `several agents are running (${live.join(', ')}): choose one with --agent PATH`);
}

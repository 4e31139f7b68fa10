/**
 * What a member runs locally besides its control plane: the member file (BOXER_NODES_FILE), the local
 * control socket (BOXER_AGENT, for `boxer status`), and the environment handed to the user's command.
 * It works on a LocalMember (control/local-member.ts), which both an Agent (`boxer run`) and the seed's own
 * member (`boxer seed -- CMD`) are.
 */
import type { MemberInfo } from '../wire/messages';
import type { LocalMember } from '../control/local-member';
import { ControlServer, type ControlReply, type ControlRequest } from '../ipc/control';
import { uniquePath, writeFileAtomic } from '../util/paths';
import fs from 'node:fs';
import { logger } from '../util/log';
import { MEMBER_FILE_RETRY_MS } from '../constants';
import { LatestFile, type AsyncWrite } from '../util/file-writer';

const log = logger('member');

/** What the member's local services use of the member. */
export type MemberSource = Pick<LocalMember, 'self' | 'list' | 'on' | 'statusExtra' | 'ping' | 'closeLinks'>;

/** What `boxer ping` needs from the member. */
export type Pinger = Pick<LocalMember, 'list' | 'ping'>;

/** Answers a control-socket `{op: "ping", name}` (name, virtual address or id). */
export async function pingReply(agent: Pinger, req: ControlRequest): Promise<ControlReply> {
  const name = String((req as { name?: unknown }).name ?? '');
  const m = agent.list().find((x) => x.name === name || x.addr === name || String(x.id) === name);
  if (!m) return { ok: false, error: `no member named ${JSON.stringify(name)} in the network`, code: 'unknown' } as ControlReply;
  try {
    const r = await agent.ping(m.id);
    return { ok: true, id: m.id, name: m.name, path: r.path, endpoint: r.endpoint, rttMs: r.rttMs };
  } catch (e) {
    return { ok: false, error: `cannot reach ${m.name}: ${(e as Error).message}`, code: 'unreachable' } as ControlReply;
  }
}

export function nodesFileText(members: MemberInfo[]): string {
  return members
    .slice()
    .sort((a, b) => a.id - b.id)
    .map((m) => `${m.id} ${m.addr} ${m.name}\n`)
    .join('');
}

export interface MemberServicesOptions {
  /** More `boxer status` fields (the virtual network's counters). */
  extra?: () => Record<string, unknown>;
  /** How the member file is written (tests: a failing disk); default an asynchronous atomic replace. */
  write?: AsyncWrite;
}

export class MemberServices {
  readonly nodesFile = uniquePath('nodes', '.txt');
  readonly control: ControlServer;
  /**
   * The member file: written at once here (it exists when the command starts), then on changes at most every
   * FILE_WRITE_INTERVAL_MS, off the event loop (util/file-writer.ts). A failed write (ENOSPC in $TMPDIR,
   * EDQUOT, ...) leaves the last good file in place (the write is atomic), is logged once per cause, and is
   * retried until a write succeeds.
   */
  private readonly file: LatestFile;

  constructor(
    private readonly view: MemberSource,
    private readonly seedAddr: string,
    private readonly opts: MemberServicesOptions = {},
  ) {
    this.control = new ControlServer(uniquePath('agent', '.sock'), (req) => this.onRequest(req));
    this.file = new LatestFile(this.nodesFile, () => nodesFileText(this.view.list()), {
      write: opts.write,
      onError: (cause) => {
        if (cause) log.warn('cannot write the member file; it keeps the last good list, retrying', { file: this.nodesFile, reason: cause, retryMs: MEMBER_FILE_RETRY_MS });
        else log.warn('the member file is up to date again', { file: this.nodesFile });
      },
    });
    try {
      const first = (opts.write ?? writeFileAtomic)(this.nodesFile, nodesFileText(view.list())) as Promise<void> | undefined;
      first?.catch(() => this.file.changed());
    } catch {
      this.file.changed(); // retried (and reported) by the writer
    }
    view.on('change', () => this.file.changed());
  }

  async start(): Promise<void> {
    await this.control.start();
  }

  /** Resolves once the member file shows the current membership (before the command starts). */
  flush(): Promise<void> {
    return this.file.flush();
  }

  /** The cause of the last failed write of the member file, or null when it is current. */
  get nodesFileError(): string | null {
    return this.file.error;
  }

  status(): Record<string, unknown> {
    const extra = { ...this.view.statusExtra(), ...this.opts.extra?.() };
    const links = new Map<number, { path: string; endpoint: string; rttMs: number | null }>();
    for (const l of (extra.links as { id: number; path: string; endpoint: string; rttMs: number | null }[] | undefined) ?? []) links.set(l.id, l);
    return {
      self: this.view.self,
      seed: this.seedAddr,
      nodesFile: this.nodesFile,
      nodesFileError: this.file.error,
      members: this.view.list().map((m) => {
        const l = links.get(m.id);
        return {
          id: m.id,
          name: m.name,
          addr: m.addr,
          services: m.services,
          ext: m.ext ? `${m.ext.ip}:${m.ext.port}` : null,
          nat: m.id === this.view.self?.id && typeof extra.nat === 'string' ? extra.nat : m.nat,
          link: l ? l.path : undefined,
          endpoint: l ? l.endpoint : undefined,
          rttMs: l ? l.rttMs : undefined,
        };
      }),
      ...extra,
    };
  }

  private async onRequest(req: ControlRequest): Promise<ControlReply> {
    if (req.op === 'status') return { ok: true, ...this.status() };
    if (req.op === 'ping') return pingReply(this.view, req);
    // For tests: drop every peer link, so that the next ping opens a new one (e.g. once the seed is gone).
    if (req.op === 'close-links') return { ok: true, closed: this.view.closeLinks() };
    return { ok: false, error: `unknown request ${JSON.stringify(req.op)}` };
  }

  /** The environment of the user's command: ours, plus BOXER_*, minus the secret. */
  env(base: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
    const self = this.view.self!;
    const env: NodeJS.ProcessEnv = { ...base };
    delete env.BOXER_SECRET;
    env.BOXER_NODE_ID = String(self.id);
    env.BOXER_NAME = self.name;
    env.BOXER_ADDR = self.addr;
    env.BOXER_NETWORK = self.network;
    env.BOXER_NODES_FILE = this.nodesFile;
    env.BOXER_SEED = this.seedAddr;
    env.BOXER_AGENT = this.control.path;
    return env;
  }

  async close(): Promise<void> {
    this.file.close();
    await this.control.close();
    try {
      fs.unlinkSync(this.nodesFile);
    } catch {
      /* gone */
    }
  }
}

/**
 * One member's session, the flow both `boxer run` and the Lambda handler (src/lambda/handler.ts) go through:
 * join the network -> wait for the barrier (`nodes` members) -> run the command (BOXER_* environment, the
 * preload shim) -> stop it when asked -> leave (an explicit `leave`, which the seed tells every member at once).
 *
 * Nothing here exits the process: the caller decides what an outcome means (`boxer run` exits with it, the
 * handler returns it). `stop()` aborts whichever step runs: the barrier wait, or the command (SIGTERM to its
 * process group, SIGKILL after STOP_GRACE_MS). Everything written goes under $TMPDIR (src/util/paths.ts), so a
 * session works with HOME unset, as a non-root user, where only /tmp is writable.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import os from 'node:os';
import { Agent, localPortRange, type Self } from '../control/agent';
import { checkName } from '../control/names';
import { parseHostPort, networkKeys } from './commands/common';
import { LocalMember, pingReply, type MemberView } from './member';
import { BoxerError } from '../util/errors';
import { logger } from '../util/log';
import { nativeIo } from '../traversal/io';
import { VirtualNetwork, agentHost, loadNative, SHIM_REPORT_WAIT_MS } from '../vnet/service';
import { PunchPorts } from '../vnet/ports';
import { STOP_GRACE_MS } from '../constants';
import type { Outcome, RunKey } from '../wire/messages';
import { memberKey, type MemberKey } from './member-key';

const log = logger('session');

export interface SessionOptions {
  /** The seed, HOST:PORT. */
  seed: string;
  /** The barrier: the command starts once the network has this many members. */
  nodes?: number;
  name?: string;
  services: string[];
  /** Reads the network secret (never handed to the command); called by join(), after the options are checked. */
  secret: () => string;
  joinTimeoutMs: number;
  /** Load the preload shim into the command (default true). */
  shim?: boolean;
  /** The seed's discovery port (default: seed port + 1, or $BOXER_DISCOVERY_PORT). */
  discoveryPort?: number;
  /** The command and its arguments. */
  cmd: string[];
  /** The command's base environment (BOXER_* and the shim's variables are added; BOXER_SECRET removed). */
  env: NodeJS.ProcessEnv;
  /** Working directory of the command (default: ours). */
  cwd?: string;
  /**
   * Start the command in its own process group (and session), so that stop() reaches everything it started.
   * `boxer run` keeps the command in the terminal's group (Ctrl-C, job control); the Lambda handler isolates it.
   */
  ownGroup?: boolean;
  /** Forward these signals received by this process to the command while it runs (`boxer run`). */
  forwardSignals?: NodeJS.Signals[];
  /** A member of a run started by `boxer lambda run`: the seed refuses a second join with the same key. */
  run?: RunKey;
  /** Called with the command's pid once it started (its process group's id too, with `ownGroup`). */
  onCommandStart?: (pid: number) => void;
  /** Called on every change of the member count while waiting for the barrier. */
  progress?: (have: number, want: number) => void;
}

/** How the command ended. */
export interface CommandOutcome {
  /** Its exit code (null when killed by a signal). */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** As a shell reports it: the code, or 128+N when killed by signal N. */
  status: number;
  /** Why stop() was called while it ran (null: it ended by itself). */
  stopped: string | null;
}

/** Thrown by `waitForMembers` when stop() aborted the wait. */
export class SessionStopped extends Error {
  constructor(readonly reason: string) {
    super(`stopped while waiting for members (${reason})`);
    this.name = 'SessionStopped';
  }
}

export class MemberSession {
  private agent: Agent | null = null;
  private vnet: VirtualNetwork | null = null;
  private member: LocalMember | null = null;
  private punchPorts: PunchPorts | null = null;
  private heldKey: MemberKey | null = null;
  private child: ChildProcess | null = null;
  private stopReason: string | null = null;
  private readonly stopped = new AbortController();
  private killTimer: NodeJS.Timeout | null = null;
  private leaving: Promise<void> | null = null;
  private readonly beforeLeave: Array<() => Promise<void>> = [];
  readonly host: string;
  readonly port: number;

  constructor(private readonly opts: SessionOptions) {
    if (opts.cmd.length === 0) throw new BoxerError('USAGE', 'nothing to run: give the command after --, e.g. boxer run --seed HOST:PORT -- ./start.sh');
    ({ host: this.host, port: this.port } = parseHostPort(opts.seed, '--seed'));
    if (opts.name) checkName(opts.name, '--name');
    opts.services.forEach((s) => checkName(s, '--service'));
    if (opts.nodes !== undefined && !(Number.isInteger(opts.nodes) && opts.nodes >= 1)) throw new BoxerError('USAGE', '--nodes: expected a whole number of members, at least 1');
  }

  /** This member, once joined. */
  get self(): Self | null {
    return this.agent?.self ?? null;
  }

  /** Why stop() was called (null: it was not). */
  get stopCause(): string | null {
    return this.stopReason;
  }

  /** Joins the network and starts the local parts (control socket, member file, virtual network). */
  async join(): Promise<Self> {
    const o = this.opts;
    const { psk, networkId, keys: fresh } = await networkKeys(o.secret());
    // A named member keeps its key, so that restarted under its name it gets its id and address back.
    this.heldKey = o.name ? memberKey(networkId, o.name) : null;
    const keys = this.heldKey?.keys ?? fresh;
    // Ports for the far ends of punched program connections, held before we announce them at join.
    this.punchPorts = o.shim === false ? null : PunchPorts.reserve(loadNative(), localPortRange());
    const agent = new Agent({
      punchPorts: this.punchPorts?.range,
      seedHost: this.host,
      seedPort: this.port,
      psk,
      keys,
      name: o.name,
      services: o.services,
      joinTimeoutMs: o.joinTimeoutMs,
      run: o.run,
      traversal: { io: nativeIo, discoveryPort: o.discoveryPort ?? envPort(process.env.BOXER_DISCOVERY_PORT) },
    });
    this.agent = agent;
    let self: Self;
    try {
      self = await agent.join();
    } catch (e) {
      this.agent = null;
      agent.stop();
      this.punchPorts?.close();
      this.punchPorts = null;
      this.heldKey?.release();
      throw e;
    }
    const vnet = o.shim === false ? null : new VirtualNetwork(agentHost(agent));
    this.vnet = vnet;
    const view: MemberView = {
      get self() {
        return agent.self;
      },
      list: () => agent.list(),
      on: (ev, fn) => agent.on(ev, fn),
      statusExtra: () => ({ role: 'member', seedConnected: agent.seedConnected, nat: agent.mapping.kind, links: agent.links(), vnet: vnet?.status() ?? null }),
      handle: (req) => {
        if (req.op === 'ping') return pingReply(agent, req);
        // For tests: drop every peer link, so that the next ping opens a new one (e.g. once the seed is gone).
        if (req.op === 'close-links') return Promise.resolve({ ok: true, closed: agent.peers?.closeLinks() ?? 0 });
        return undefined;
      },
    };
    this.member = new LocalMember(view, `${this.host}:${this.port}`);
    await this.member.start();
    await vnet?.start();
    return self;
  }

  /** Waits for the barrier (a no-op without `nodes` > 1); throws SessionStopped when stop() is called. */
  async waitForMembers(): Promise<void> {
    const want = this.opts.nodes;
    if (!want || want <= 1) return;
    if (this.stopReason) throw new SessionStopped(this.stopReason);
    let last = -1;
    try {
      await this.agent!.waitForMembers(
        want,
        (have) => {
          if (have !== last) this.opts.progress?.(have, want);
          last = have;
        },
        this.stopped.signal,
      );
    } catch (e) {
      if (this.stopReason) throw new SessionStopped(this.stopReason);
      throw e;
    }
  }

  /** Runs the command to its end (or until stop() ends it). */
  async runCommand(): Promise<CommandOutcome> {
    const self = this.self!;
    const o = this.opts;
    log.info('starting the command', { id: self.id, name: self.name, addr: self.addr, cmd: o.cmd.join(' ') });
    const base = this.member!.env(o.env);
    const env = this.vnet ? this.vnet.env(base) : base;
    const ended = new Promise<CommandOutcome>((resolve, reject) => {
      const child = spawn(o.cmd[0], o.cmd.slice(1), { stdio: 'inherit', env, cwd: o.cwd, detached: !!o.ownGroup });
      this.child = child;
      if (child.pid) o.onCommandStart?.(child.pid);
      const forward = (sig: NodeJS.Signals) => child.kill(sig);
      for (const s of o.forwardSignals ?? []) process.on(s, forward);
      const cleanup = () => {
        (o.forwardSignals ?? []).forEach((s) => process.off(s, forward));
        if (this.killTimer) clearTimeout(this.killTimer);
        this.killTimer = null;
        this.child = null;
      };
      child.on('error', (e: NodeJS.ErrnoException) => {
        cleanup();
        reject(new BoxerError('USAGE', `cannot start ${o.cmd[0]}: ${e.code === 'ENOENT' ? 'no such command (check PATH and the working directory)' : e.message}`));
      });
      child.on('exit', (code, signal) => {
        cleanup();
        // What the command left behind in its group (background jobs) goes with it.
        if (o.ownGroup && child.pid) killGroup(child.pid, 'SIGKILL');
        const status = signal ? 128 + (os.constants.signals[signal] ?? 0) : code ?? 0;
        resolve({ exitCode: signal ? null : code ?? 0, signal, status, stopped: this.stopReason });
      });
    });
    if (this.stopReason) this.signalCommand();
    if (this.vnet) {
      let done = false;
      void ended.finally(() => (done = true)).catch(() => undefined);
      void this.vnet.shimReported().then((loaded) => {
        if (!loaded && !done) {
          process.stderr.write(
            `boxer: ${o.cmd[0]} did not load the Boxer shim within ${SHIM_REPORT_WAIT_MS / 1000} s (a static binary such as a Go program, a setuid program, or an unreadable library?): it runs WITHOUT the virtual network\n`,
          );
        }
      });
    }
    return ended;
  }

  /**
   * Stops the session: a barrier wait ends with SessionStopped; a running command gets SIGTERM (its whole
   * process group when `ownGroup`), then SIGKILL after STOP_GRACE_MS. Idempotent; the first reason stays.
   */
  stop(reason: string): void {
    if (this.stopReason) return;
    this.stopReason = reason;
    this.stopped.abort();
    this.signalCommand();
  }

  private signalCommand(): void {
    const child = this.child;
    if (!child?.pid || this.killTimer) return;
    log.info('stopping the command', { reason: this.stopReason, graceMs: STOP_GRACE_MS });
    const send = (sig: NodeJS.Signals) => (this.opts.ownGroup ? killGroup(child.pid!, sig) : child.kill(sig));
    send('SIGTERM');
    this.killTimer = setTimeout(() => send('SIGKILL'), STOP_GRACE_MS);
    this.killTimer.unref();
  }

  /**
   * Work that must finish while this member is still in the network, run by leave() before it says goodbye
   * (e.g. draining the services it provides). Each hook is awaited in order.
   */
  onBeforeLeave(fn: () => Promise<void>): void {
    this.beforeLeave.push(fn);
  }

  /**
   * Leaves the network (an explicit `leave`: the others drop us at once; observers hear the command's outcome)
   * and closes the local parts. Idempotent: the first call's outcome is the one told.
   */
  leave(outcome?: CommandOutcome | null): Promise<void> {
    this.leaving ??= (async () => {
      for (const fn of this.beforeLeave) {
        try {
          await fn();
        } catch (e) {
          log.warn('a step before leaving failed', { reason: (e as Error).message });
        }
      }
      await this.agent?.leave(outcome === undefined ? undefined : wireOutcome(outcome, this.stopReason));
      await this.vnet?.close();
      this.punchPorts?.close();
      await this.member?.close();
      this.heldKey?.release();
    })();
    return this.leaving;
  }

  /**
   * The whole flow: join, barrier, command, leave (also when a step fails). Resolves with the command's
   * outcome, or null when stop() came before the command started.
   */
  async run(): Promise<CommandOutcome | null> {
    await this.join();
    try {
      try {
        await this.waitForMembers();
      } catch (e) {
        if (e instanceof SessionStopped) {
          await this.leave(null);
          return null;
        }
        throw e;
      }
      const outcome = await this.runCommand();
      await this.leave(outcome);
      return outcome;
    } finally {
      await this.leave();
    }
  }
}

/** A command's end as `leave` tells it (null: stopped before it started). */
function wireOutcome(o: CommandOutcome | null, stopReason: string | null): Outcome {
  if (!o) return { code: null, signal: null, reason: stopReason ?? 'stopped' };
  return { code: o.exitCode === null ? null : Math.min(255, Math.max(0, o.exitCode)), signal: o.signal, reason: o.stopped ?? 'exited' };
}

/** Sends a signal to a whole process group; false when the group is gone. */
export function killGroup(pgid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, sig);
    return true;
  } catch {
    return false;
  }
}

function envPort(v: string | undefined): number | undefined {
  const n = Number(v);
  return v && Number.isInteger(n) && n > 0 && n < 65536 ? n : undefined;
}

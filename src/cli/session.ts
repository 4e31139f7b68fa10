/**
 * One member's session, the flow both `boxer run` and the Lambda handler (src/lambda/handler.ts) go through:
 * join the network -> wait for the barrier (`nodes` members) -> run the command (BOXER_* environment, the
 * preload shim) -> stop it when asked -> leave (an explicit `leave`, which the seed tells every member at once).
 *
 * Nothing here exits the process: the caller decides what an outcome means (`boxer run` exits with it, the
 * handler returns it). `stop()` aborts whichever step runs: the join (given JOIN_SIGNAL_GRACE_MS to finish, so
 * that the seed hears `leave`), the barrier wait, or the command (SIGTERM to its process group, SIGKILL after
 * STOP_GRACE_MS). The command runs in its own process group (src/cli/process.ts). Everything written goes under $TMPDIR (src/util/paths.ts), so a
 * session works with HOME unset, as a non-root user, where only /tmp is writable.
 */
import { Agent, type Self } from '../control/agent';
import { localPortRange } from '../control/port-map';
import { checkName } from '../control/names';
import { parseHostPort, networkKeys } from './commands/common';
import { MemberServices } from './member';
import { BoxerError } from '../util/errors';
import { logger } from '../util/log';
import { nativeIo } from '../traversal/io';
import { VirtualNetwork } from '../ipc/virtual-network';
import { native } from '../util/native';
import { PunchPorts } from '../vnet/ports';
import { Serving } from '../vnet/serving';
import { capacity, parseCidr } from '../control/addresses';
import { DRAIN_GRACE_MS, JOIN_SIGNAL_GRACE_MS, MAX_JOIN_TIMEOUT_S, SHUTDOWN_MAX_MS, STOP_GRACE_MS } from '../constants';
import { signalStatus, startMemberCommand, withDeadline, type CommandHandle } from './process';
import type { InterceptChoice } from './intercept';
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
  /** How the command gets the virtual network (src/cli/intercept.ts); default auto. */
  intercept?: InterceptChoice;
  /** Forward SIGINT/SIGTERM/SIGHUP received by this process to the command while it runs (`boxer run`). */
  forwardSignals?: boolean;
  /**
   * How long a member that provides services lets open connections finish after it left them, before stop()
   * signals the command (default DRAIN_GRACE_MS; 0: no drain).
   */
  drainGraceMs?: number;
  /** A member of a run started by `boxer lambda run`: the seed refuses a second join with the same key. */
  run?: RunKey;
  /** Called with the command's pid (= its process group's id) once it started. */
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
    super(`stopped before the command started (${reason})`);
    this.name = 'SessionStopped';
  }
}

export class MemberSession {
  private agent: Agent | null = null;
  private vnet: VirtualNetwork | null = null;
  private member: MemberServices | null = null;
  private punchPorts: PunchPorts | null = null;
  private heldKey: MemberKey | null = null;
  private command: CommandHandle | null = null;
  private stopReason: string | null = null;
  private readonly stopped = new AbortController();
  private killTimer: NodeJS.Timeout | null = null;
  private leaving: Promise<void> | null = null;
  private readonly beforeLeave: Array<() => Promise<void>> = [];
  /** When the member takes connections for its services, and its drain (src/vnet/serving.ts). */
  private serving: Serving | null = null;
  readonly host: string;
  readonly port: number;

  constructor(private readonly opts: SessionOptions) {
    if (opts.cmd.length === 0) throw new BoxerError('USAGE', 'nothing to run: give the command after --, e.g. boxer run --seed HOST:PORT -- ./start.sh');
    ({ host: this.host, port: this.port } = parseHostPort(opts.seed, '--seed'));
    if (opts.name !== undefined) checkName(opts.name, '--name');
    opts.services.forEach((s) => checkName(s, '--service'));
    const maxNodes = capacity(parseCidr('0.0.0.0/8'));
    if (opts.nodes !== undefined && !(Number.isInteger(opts.nodes) && opts.nodes >= 1 && opts.nodes <= maxNodes)) {
      throw new BoxerError('USAGE', `--nodes ${opts.nodes}: expected a whole number of members, at least 1 and at most ${maxNodes} (the largest network, a /8)`);
    }
    if (!(Number.isFinite(opts.joinTimeoutMs) && opts.joinTimeoutMs > 0 && opts.joinTimeoutMs <= MAX_JOIN_TIMEOUT_S * 1000)) {
      throw new BoxerError('USAGE', `--join-timeout: expected a number of seconds greater than 0 and at most ${MAX_JOIN_TIMEOUT_S}`);
    }
  }

  /** This member, once joined. */
  get self(): Self | null {
    return this.agent?.self ?? null;
  }

  /** Why stop() was called (null: it was not). */
  get stopCause(): string | null {
    return this.stopReason;
  }

  /**
   * Joins the network and starts the local parts (control socket, member file, virtual network). stop() during
   * the join: the join gets JOIN_SIGNAL_GRACE_MS to finish (then the member leaves), and SessionStopped is thrown.
   */
  async join(): Promise<Self> {
    const o = this.opts;
    const { psk, networkId, keys: fresh } = await networkKeys(o.secret());
    // A named member keeps its key, so that restarted under its name it gets its id and address back.
    this.heldKey = o.name ? memberKey(networkId, o.name) : null;
    const keys = this.heldKey?.keys ?? fresh;
    // Ports for the far ends of punched program connections, held before we announce them at join.
    this.punchPorts = o.shim === false ? null : PunchPorts.reserve(native(), localPortRange());
    const agent = new Agent({
      punchPorts: this.punchPorts?.range,
      seedHost: this.host,
      seedPort: this.port,
      psk,
      keys,
      name: o.name,
      services: o.services,
      // Its services take connections once the program listens (Serving.start below).
      standby: o.services.length > 0,
      joinTimeoutMs: o.joinTimeoutMs,
      run: o.run,
      traversal: { io: nativeIo, discoveryPort: o.discoveryPort ?? envPort(process.env.BOXER_DISCOVERY_PORT) },
    });
    this.agent = agent;
    log.info('joining', { seed: `${this.host}:${this.port}`, joinTimeoutS: o.joinTimeoutMs / 1000 });
    const joining = agent.join();
    const stopped = new Promise<null>((resolve) => this.stopped.signal.addEventListener('abort', () => resolve(null)));
    let self: Self | null;
    try {
      self = await Promise.race([joining, stopped]);
      if (!self) {
        // A join under way gets a moment to finish, so that the seed hears `leave` rather than a silence.
        await withDeadline(joining, JOIN_SIGNAL_GRACE_MS, () => undefined);
        await this.leave(null);
        throw new SessionStopped(this.stopReason!);
      }
    } catch (e) {
      if (e instanceof SessionStopped) throw e;
      this.agent = null;
      agent.stop();
      this.punchPorts?.close();
      this.punchPorts = null;
      this.heldKey?.release();
      throw e;
    }
    const room = capacity(parseCidr(self.network));
    if (o.nodes !== undefined && o.nodes > room) {
      await this.leave(null);
      throw new BoxerError('USAGE', `--nodes ${o.nodes}: the network ${self.network} holds at most ${room} members`);
    }
    // The same composition as the seed's own member (cli/commands/seed.ts): the virtual network and the local
    // services over the LocalMember, here the Agent.
    const vnet = o.shim === false ? null : new VirtualNetwork(agent, keys);
    this.vnet = vnet;
    this.member = new MemberServices(agent, `${this.host}:${this.port}`, { extra: () => ({ vnet: vnet?.status() ?? null }) });
    await this.member.start();
    await vnet?.start();
    this.serving = new Serving(agent, vnet?.broker ?? null, this.punchPorts?.range ?? null);
    this.serving.start();
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
    if (this.stopReason) throw new SessionStopped(this.stopReason);
    // The member file and the route table are written in batches: the command starts with both current.
    await Promise.all([this.member!.flush(), this.vnet?.flush()]);
    log.info('starting the command', { id: self.id, name: self.name, addr: self.addr, cmd: o.cmd.join(' ') });
    const command = await startMemberCommand(o.cmd, this.member!.env(o.env), this.vnet, o.intercept, { cwd: o.cwd, forwardSignals: !!o.forwardSignals });
    this.command = command;
    o.onCommandStart?.(command.pid);
    if (this.stopReason) this.signalCommand();
    const { code, signal } = await command.ended;
    // What the command left behind in its group (background jobs) goes with it.
    command.kill('SIGKILL');
    if (this.killTimer) clearTimeout(this.killTimer);
    this.killTimer = null;
    this.command = null;
    return { exitCode: code, signal, status: signal ? signalStatus(signal) : code ?? 0, stopped: this.stopReason };
  }

  /**
   * Stops the session: a barrier wait ends with SessionStopped; a running command gets SIGTERM (its whole
   * process group), then SIGKILL after STOP_GRACE_MS; a member that provides services first drains (for at
   * most `drainGraceMs`: src/vnet/drain.ts). Idempotent; the first reason stays.
   */
  stop(reason: string): void {
    if (this.stopReason) return;
    this.stopReason = reason;
    this.stopped.abort();
    // A member providing services drains first (out of its services, open connections finish), then stops.
    if (this.command && this.serving) {
      void this.serving.drain(this.opts.drainGraceMs ?? DRAIN_GRACE_MS).finally(() => this.signalCommand());
      return;
    }
    this.signalCommand();
  }

  /** A second request to stop (Ctrl-C again): the command gets SIGTERM now, drained or not. */
  hurry(): void {
    if (this.stopReason) this.signalCommand();
  }

  private signalCommand(): void {
    const command = this.command;
    if (!command || this.killTimer) return;
    log.info('stopping the command', { reason: this.stopReason, graceMs: STOP_GRACE_MS });
    command.kill('SIGTERM');
    this.killTimer = setTimeout(() => command.kill('SIGKILL'), STOP_GRACE_MS);
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
    this.leaving ??= withDeadline(this.leaveSteps(outcome), SHUTDOWN_MAX_MS + this.beforeLeave.length * SHUTDOWN_MAX_MS, () =>
      log.warn('leaving took too long; going on anyway', { afterMs: SHUTDOWN_MAX_MS }),
    );
    return this.leaving;
  }

  private async leaveSteps(outcome: CommandOutcome | null | undefined): Promise<void> {
    {
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
    }
  }

  /**
   * The whole flow: join, barrier, command, leave (also when a step fails). Resolves with the command's
   * outcome, or null when stop() came before the command started.
   */
  async run(): Promise<CommandOutcome | null> {
    try {
      await this.join();
      await this.waitForMembers();
      const outcome = await this.runCommand();
      await this.leave(outcome);
      return outcome;
    } catch (e) {
      if (!(e instanceof SessionStopped)) throw e;
      await this.leave(null);
      return null;
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

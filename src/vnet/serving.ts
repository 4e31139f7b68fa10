/**
 * When a member takes connections for its services (MemberInfo.standby, services.ts): `boxer run` and the
 * Lambda handler join with their services on standby, take connections once the program listens (its shim's
 * first LISTEN; or, when no shim reported within SHIM_REPORT_WAIT_MS, a program without the virtual network,
 * right away), and drain (drain.ts) before they stop the program.
 */
import { SHIM_REPORT_WAIT_MS } from '../constants';
import { logger } from '../util/log';
import { drain, readProcNetTcp } from './drain';
import type { Broker } from './broker';

const log = logger('vnet');

/** The agent's part (control/agent.ts). */
export interface ServingAgent {
  readonly serving: { services: string[]; standby: boolean };
  setServices(services: string[], standby?: boolean): void;
}

export class Serving {
  private timer: NodeJS.Timeout | null = null;
  private drained: Promise<unknown> | null = null;

  constructor(
    private readonly agent: ServingAgent,
    /** The member's broker (null: no virtual network, `--no-shim`). */
    private readonly broker: Broker | null,
    /** The punch block (its connections are handed over with a punch port as local port). */
    private readonly punch: [number, number] | null,
  ) {}

  /** Takes connections for the services once the program listens (see the top). */
  start(): void {
    const { services, standby } = this.agent.serving;
    if (!services.length || !standby) return;
    const ready = (why: string) => {
      if (this.drained || !this.agent.serving.standby) return;
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      log.info('taking connections for the services', { services: services.join(','), why });
      this.agent.setServices(services, false);
    };
    const broker = this.broker;
    if (!broker) return ready('no virtual network');
    broker.onListen = () => ready('the program listens');
    this.timer = setTimeout(() => {
      if (broker.shims.size === 0) ready('no shim reported: a program without the virtual network');
    }, SHIM_REPORT_WAIT_MS);
    this.timer.unref();
  }

  /**
   * Drains (drain.ts) for at most graceMs: out of the services first, then the open connections finish. A
   * member without services, or one that never took connections, has nothing to drain. Idempotent.
   */
  drain(graceMs: number): Promise<unknown> {
    if (this.drained) return this.drained;
    if (this.timer) clearTimeout(this.timer);
    const { services, standby } = this.agent.serving;
    if (!services.length || standby || graceMs <= 0) {
      if (services.length) this.agent.setServices(services, true);
      return (this.drained = Promise.resolve());
    }
    log.info('draining: out of the services, open connections finish', { services: services.join(','), graceMs });
    return (this.drained = drain(
      {
        leaveServices: () => this.agent.setServices(services, true),
        ports: () => ({ listening: this.broker?.listening() ?? [], punch: this.punch }),
        procNetTcp: readProcNetTcp,
        sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
        now: () => Date.now(),
      },
      graceMs,
    ));
  }
}

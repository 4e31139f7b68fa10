/**
 * Draining a member before its program stops (`boxer run`, the Lambda handler's deadline): the member leaves
 * the services it provides first (every member's route table drops it from the service addresses,
 * services.ts, so no new connection picks it), then the program's open connections get until the grace period
 * ends to finish; only then is the program stopped. No request in flight fails.
 *
 * The drain ends early once, after DRAIN_SETTLE_MS (the time for the services change to reach every member
 * and for connections already on their way to arrive), no TCP connection of this host is established on a
 * port the program listens on or in the agent's punch block (punched connections are handed over with the
 * punch port as their local port). Relayed connections (local port: any) are not seen: the grace period
 * bounds them.
 */
import fs from 'node:fs';
import { DRAIN_POLL_MS, DRAIN_SETTLE_MS } from '../constants';
import { logger } from '../util/log';

const log = logger('vnet');

export interface DrainIo {
  /** Stops providing every service (the seed re-announces this member without them). */
  leaveServices(): void;
  /** Local ports whose established connections belong to the program's accepted connections. */
  ports(): { listening: number[]; punch: [number, number] | null };
  /** The text of /proc/net/tcp and /proc/net/tcp6 (this network namespace's TCP sockets). */
  procNetTcp(): string;
  sleep(ms: number): Promise<void>;
  now(): number;
}

/** ESTABLISHED in /proc/net/tcp's `st` column. */
const TCP_ESTABLISHED = '01';

/** How many established connections /proc/net/tcp lists whose local port is one of `ports`. */
export function countEstablished(procText: string, isOurs: (port: number) => boolean): number {
  let n = 0;
  for (const line of procText.split('\n')) {
    // "  0: 0100007F:1F90 0100007F:C350 01 ..." : sl, local address:port, remote address:port, st
    const f = line.trim().split(/\s+/);
    if (f.length < 4 || f[3] !== TCP_ESTABLISHED) continue;
    const port = parseInt(f[1].split(':')[1] ?? '', 16);
    if (Number.isInteger(port) && isOurs(port)) n++;
  }
  return n;
}

/**
 * Drains (see the top of the file) for at most `graceMs`. Resolves with how long it took and the connections
 * still open at its end (0 unless the grace period ran out).
 */
export async function drain(io: DrainIo, graceMs: number): Promise<{ ms: number; open: number }> {
  const start = io.now();
  io.leaveServices();
  const open = () => {
    const { listening, punch } = io.ports();
    const set = new Set(listening);
    return countEstablished(io.procNetTcp(), (p) => set.has(p) || (!!punch && p >= punch[0] && p <= punch[1]));
  };
  await io.sleep(Math.min(DRAIN_SETTLE_MS, graceMs));
  let left = open();
  while (left > 0 && io.now() - start < graceMs) {
    await io.sleep(Math.min(DRAIN_POLL_MS, Math.max(1, graceMs - (io.now() - start))));
    left = open();
  }
  const ms = io.now() - start;
  if (left > 0) log.info('the drain period ended with connections still open', { open: left, graceMs });
  else log.debug('drained', { ms });
  return { ms, open: left };
}

/** /proc/net/tcp and tcp6 of this network namespace ('' where absent). */
export function readProcNetTcp(): string {
  let text = '';
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    try {
      text += fs.readFileSync(f, 'utf8');
    } catch {
      /* no IPv6, or no /proc: nothing seen there */
    }
  }
  return text;
}

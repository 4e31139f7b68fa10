/**
 * The block of local ports where this member's agent binds the far ends of punched program connections.
 *
 * Another member's program connects to our NAT's external port for a port M it draws in our announced range;
 * our agent must then bind M. Any socket of our programs bound to M without SO_REUSEPORT (the shim binds client
 * sockets to random ports of ip_local_port_range) would make that bind fail with EADDRINUSE, and the
 * connection would time out. So the agent holds a block of ports, each bound (SO_REUSEADDR + SO_REUSEPORT, not
 * listening): the kernel's and the shim's port choices skip ports in use, while the agent's own punching sockets
 * (same user, also SO_REUSEPORT) can still bind them. Only the block is announced.
 */
import { logger } from '../util/log';

const log = logger('vnet');

/** Ports in the block: enough that concurrent punched connections from one client rarely share a port. */
export const PUNCH_BLOCK_SIZE = 64;
/** Positions tried in the port range before giving up (each try binds up to PUNCH_BLOCK_SIZE sockets). */
const PUNCH_BLOCK_TRIES = 8;

interface PortOps {
  tcpSocket(): number;
  bind(fd: number, ip: string, port: number): void;
  close(fd: number): void;
}

export class PunchPorts {
  private constructor(
    private readonly fds: number[],
    readonly range: [number, number],
    private readonly ops: PortOps,
  ) {}

  /** Reserves a block inside [lo, hi]; null when none could be had (then the whole range is announced). */
  static reserve(ops: PortOps, [lo, hi]: [number, number]): PunchPorts | null {
    const size = Math.min(PUNCH_BLOCK_SIZE, hi - lo + 1);
    for (let t = 0; t < PUNCH_BLOCK_TRIES; t++) {
      const start = lo + Math.floor(Math.random() * (hi - lo + 2 - size));
      const fds: number[] = [];
      try {
        for (let p = start; p < start + size; p++) {
          const fd = ops.tcpSocket();
          fds.push(fd);
          ops.bind(fd, '0.0.0.0', p);
        }
        return new PunchPorts(fds, [start, start + size - 1], ops);
      } catch {
        for (const fd of fds) ops.close(fd);
      }
    }
    log.warn('could not reserve a block of ports for punched connections; using the whole range', { lo, hi });
    return null;
  }

  close(): void {
    for (const fd of this.fds.splice(0)) this.ops.close(fd);
  }
}

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
import { PUNCH_BLOCK_SIZE, PUNCH_SCAN_BINDS } from '../constants';

const log = logger('vnet');

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

  /**
   * Reserves a block of consecutive ports inside [lo, hi], scanning from a random start (wrapping once); null
   * when none could be had within PUNCH_SCAN_BINDS binds (then the whole range is announced).
   */
  static reserve(ops: PortOps, [lo, hi]: [number, number]): PunchPorts | null {
    const span = hi - lo + 1;
    const size = Math.min(PUNCH_BLOCK_SIZE, span);
    let start = lo + Math.floor(Math.random() * (span - size + 1));
    const fds: number[] = [];
    const release = () => fds.splice(0).forEach((fd) => ops.close(fd));
    let binds = 0;
    for (let p = start; binds < PUNCH_SCAN_BINDS && binds < span + size; ) {
      if (p + (size - fds.length) - 1 > hi) {
        // The block would run past the range: wrap to its start.
        release();
        p = start = lo;
        continue;
      }
      const fd = ops.tcpSocket();
      binds++;
      try {
        ops.bind(fd, '0.0.0.0', p);
        fds.push(fd);
        if (fds.length === size) return new PunchPorts(fds, [start, start + size - 1], ops);
      } catch {
        ops.close(fd);
        release();
        start = p + 1;
      }
      p++;
    }
    release();
    log.warn('could not reserve a block of ports for punched connections; using the whole range', { lo, hi, binds });
    return null;
  }

  close(): void {
    for (const fd of this.fds.splice(0)) this.ops.close(fd);
  }
}

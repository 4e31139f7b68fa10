/**
 * The virtual address space: a CIDR block (default 100.96.0.0/16) handed out one address per member, in
 * order, never reused within a network. Host numbers ending in .0 or .255 are skipped: some programs take
 * them for network or broadcast addresses even inside a larger block.
 */
import { BoxerError } from '../util/errors';

export function ipToInt(ip: string): number {
  const p = ip.split('.').map(Number);
  return ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0;
}
export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export interface Cidr {
  base: number;
  bits: number;
  text: string;
}

export function parseCidr(text: string): Cidr {
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/.exec(text);
  const bits = m ? Number(m[2]) : NaN;
  if (!m || m[1].split('.').some((x) => Number(x) > 255) || !(bits >= 8 && bits <= 30)) {
    throw new BoxerError('USAGE', `--network ${text}: expected an IPv4 CIDR block such as 100.96.0.0/16, /8 to /30`);
  }
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  const base = (ipToInt(m[1]) & mask) >>> 0;
  return { base, bits, text: `${intToIp(base)}/${bits}` };
}

export function inCidr(c: Cidr, ip: string): boolean {
  const mask = (~0 << (32 - c.bits)) >>> 0;
  return ((ipToInt(ip) & mask) >>> 0) === c.base;
}

function usable(n: number): boolean {
  const last = n & 255;
  return last !== 0 && last !== 255;
}

/** How many members a network can hold: its usable addresses (host numbers .0 and .255 skipped, see usable()). */
export function capacity(c: Cidr): number {
  const total = 2 ** (32 - c.bits);
  return c.bits <= 24 ? (total / 256) * 254 : total - 2;
}

/** Hands out addresses in order. `high` is the highest address ever handed out (or learnt), as an integer. */
export class AddressPool {
  private readonly last: number;
  high: number;

  constructor(readonly cidr: Cidr) {
    this.high = cidr.base;
    this.last = (cidr.base + 2 ** (32 - cidr.bits) - 2) >>> 0; // the block's broadcast address is excluded
  }

  /** Marks an address as taken (learnt from a member after a seed restart). */
  reserve(addr: number): void {
    if (addr > this.high) this.high = addr;
  }

  allocate(): string {
    let n = this.high + 1;
    while (n <= this.last && !usable(n)) n++;
    if (n > this.last) {
      throw new BoxerError('NETWORK_FULL', `the virtual network ${this.cidr.text} has no free address left; start the seed with a larger --network`);
    }
    this.high = n;
    return intToIp(n);
  }
}

/**
 * The virtual address space: a CIDR block (default 100.96.0.0/16). Member id N has the N-th usable address of
 * the block (`addressOf`), so an id and its address are one number: the seed hands out ids, and an address
 * claimed with an id is checked by recomputing it. Host numbers ending in .0 or .255 are skipped: some
 * programs take them for network or broadcast addresses even inside a larger block.
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

/** Whether `ip` is inside the network `c`. */
export function inCidr(c: Cidr, ip: string): boolean {
  const mask = (~0 << (32 - c.bits)) >>> 0;
  return ((ipToInt(ip) & mask) >>> 0) === c.base;
}

/** How many member addresses the block holds (ids 1..capacity). */
export function capacity(c: Cidr): number {
  const size = 2 ** (32 - c.bits);
  // Up to /24 the block is whole /24s of 254 usable hosts (.1-.254); a smaller block is inside one /24,
  // whose last address (the broadcast) is not handed out.
  return c.bits <= 24 ? (size / 256) * 254 : size - 2;
}

/** The virtual address of member id `id` (1 <= id <= capacity), else null. */
export function addressOf(c: Cidr, id: number): string | null {
  if (!Number.isInteger(id) || id < 1 || id > capacity(c)) return null;
  if (c.bits > 24) return intToIp(c.base + id);
  const q = Math.floor((id - 1) / 254);
  return intToIp(c.base + q * 256 + ((id - 1) % 254) + 1);
}

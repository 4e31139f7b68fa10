/**
 * The virtual address space: a CIDR block (default 100.96.0.0/16). Member id N has the N-th usable address of
 * the block (`addressOf`), so an id and its address are one number: the seed hands out ids, and an address
 * claimed with an id is checked by recomputing it. Host numbers ending in .0 or .255 are skipped: some
 * programs take them for network or broadcast addresses even inside a larger block.
 */
import { BoxerError } from '../util/errors';
import { formatIPv4, parseIPv4 } from '../util/ipv4';

export interface Cidr {
  base: number;
  bits: number;
  text: string;
}

export function parseCidr(text: string): Cidr {
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d+)$/.exec(text);
  const bits = m ? Number(m[2]) : NaN;
  const ip = m ? parseIPv4(m[1]) : undefined;
  if (ip === undefined || !(bits >= 8 && bits <= 30)) {
    throw new BoxerError('USAGE', `--network ${text}: expected an IPv4 CIDR block such as 100.96.0.0/16, /8 to /30`);
  }
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  const base = (ip & mask) >>> 0;
  return { base, bits, text: `${formatIPv4(base)}/${bits}` };
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
  if (c.bits > 24) return formatIPv4(c.base + id);
  const q = Math.floor((id - 1) / 254);
  return formatIPv4(c.base + q * 256 + ((id - 1) % 254) + 1);
}

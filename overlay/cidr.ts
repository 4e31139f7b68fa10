/** IPv4 networks (CIDR blocks) as numbers: what the lab's plan computes with (addresses: src/util/ipv4.ts). */
import { parseIPv4 } from '../src/util/ipv4';

export interface Cidr {
  network: number;
  prefixLen: number;
  text: string;
}

export function parseCidr(s: string): Cidr | undefined {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(s);
  if (!m) return undefined;
  const addr = parseIPv4(m[1]);
  const prefixLen = Number(m[2]);
  if (addr === undefined || prefixLen > 32) return undefined;
  const network = (addr & maskOf(prefixLen)) >>> 0;
  if (network !== addr) return undefined; // host bits set: almost always a typo
  return { network, prefixLen, text: s };
}

export function maskOf(prefixLen: number): number {
  return prefixLen === 0 ? 0 : (0xffffffff << (32 - prefixLen)) >>> 0;
}

export function cidrContains(c: Cidr, addr: number): boolean {
  return ((addr & maskOf(c.prefixLen)) >>> 0) === c.network;
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return cidrContains(a, b.network) || cidrContains(b, a.network);
}

export function cidrSize(c: Cidr): number {
  return 2 ** (32 - c.prefixLen);
}

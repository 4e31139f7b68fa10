/** IPv4 addresses and networks as numbers: what the lab's plan computes with. */

export function parseIPv4(s: string): number | undefined {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0;
}

export function formatIPv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

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

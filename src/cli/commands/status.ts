/** `boxer status`: the members as the local agent sees them. */
import { controlRequest, findAgent } from '../../ipc/control';
import { BoxerError } from '../../util/errors';

export interface StatusMember {
  id: number;
  name: string;
  addr: string;
  ext: string | null;
  nat: string;
  link?: string;
  endpoint?: string;
  rttMs?: number | null;
}

export function formatStatus(s: { self: { id: number } | null; members: StatusMember[]; seed?: string }): string {
  const rows = [['ID', 'NAME', 'ADDRESS', 'EXTERNAL', 'NAT', 'LINK', 'ENDPOINT', 'RTT']];
  for (const m of s.members) {
    const self = m.id === s.self?.id;
    rows.push([
      String(m.id),
      m.name,
      m.addr,
      m.ext ?? '-',
      m.nat,
      self ? 'self' : m.link ?? '-',
      self ? '-' : m.endpoint ?? '-',
      self || m.rttMs === undefined || m.rttMs === null ? '-' : `${m.rttMs} ms`,
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n');
}

export async function statusCommand(a: { agent?: string; json: boolean }): Promise<void> {
  const path = await findAgent(a.agent);
  const reply = await controlRequest(path, { op: 'status' });
  if (!reply.ok) throw new BoxerError('NO_AGENT', `the agent answered: ${reply.error}`);
  if (a.json) {
    console.log(JSON.stringify(reply, null, 2));
    return;
  }
  console.log(formatStatus(reply as unknown as Parameters<typeof formatStatus>[0]));
}

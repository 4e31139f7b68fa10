/** `boxer ping NAME`: opens (or uses) the local agent's link to a member and prints the path and round trip. */
import { controlRequest, findAgent } from '../../ipc/control';
import { BoxerError } from '../../util/errors';

export async function pingCommand(a: { name: string; agent?: string; json: boolean }): Promise<void> {
  const path = await findAgent(a.agent);
  const reply = await controlRequest(path, { op: 'ping', name: a.name });
  if (a.json) console.log(JSON.stringify(reply));
  if (!reply.ok) {
    const code = (reply as { code?: string }).code;
    if (code === 'unreachable' || code === 'unknown') {
      if (!a.json) console.error(`boxer: ${reply.error}`);
      process.exit(new BoxerError('UNREACHABLE', reply.error).exitCode);
    }
    throw new BoxerError('NO_AGENT', `the agent answered: ${reply.error}`);
  }
  if (!a.json) console.log(`${reply.name} (id ${reply.id}): path ${reply.path}, endpoint ${reply.endpoint}, rtt ${reply.rttMs} ms`);
}

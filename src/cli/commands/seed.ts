/** `boxer seed`: the rendezvous of a network; with `-- CMD`, also a member running CMD. */
import path from 'node:path';
import { Seed } from '../../control/seed';
import { parseHostPort, networkKeys } from './common';
import { seedSecret } from '../secret';
import { checkName } from '../../control/names';
import { MemberServices } from '../member';
import { runMemberCommand } from '../process';
import { VirtualNetwork } from '../../ipc/virtual-network';
import { native } from '../../util/native';
import { seedRelay } from '../../vnet/seed-relay';
import type { KernelSplice } from '../../vnet/relay';
import { logger } from '../../util/log';
import { runtimeDir } from '../../util/paths';
import { parseCidr } from '../../control/addresses';
import { DiscoveryServer } from '../../traversal/discovery';
import { DISCOVERY_PORT_OFFSET } from '../../constants';
import { BoxerError } from '../../util/errors';
import { SeedMember } from '../../control/seed-member';
import { nativeIo } from '../../traversal/io';
import type { KeyPair } from '../../crypto/keys';

export interface SeedArgs {
  listen: string;
  network: string;
  secretFile?: string;
  name?: string;
  services: string[];
  /** NAT discovery port (default: the listen port + DISCOVERY_PORT_OFFSET). */
  discoveryPort?: number;
  cmd: string[];
}

export async function seedCommand(a: SeedArgs): Promise<void> {
  const { host, port } = parseHostPort(a.listen, '--listen');
  const cidr = parseCidr(a.network);
  if (a.name !== undefined) checkName(a.name, '--name');
  a.services.forEach((s) => checkName(s, '--service'));
  const { secret, file, generated } = seedSecret(a.secretFile, port);
  const { psk, keys, networkId } = await networkKeys(secret);
  const runsCmd = a.cmd.length > 0;
  const seed = new Seed({
    network: cidr.text,
    psk,
    keys,
    stateFile: path.join(runtimeDir(), `seed-${host}-${port}-${networkId}.json`),
    self: runsCmd ? { name: a.name, services: a.services, ext: host === '0.0.0.0' ? null : { ip: host, port } } : undefined,
  });
  const bound = await seed.listen(host, port);
  const where = `${bound.address}:${bound.port}`;
  // The relay of last resort for program connections (no open member to relay through).
  const relayServer = seedRelay(seed, host === '0.0.0.0' ? null : host, kernelSplice());
  const discovery = new DiscoveryServer({ psk, keys });
  const dport = await listenDiscovery(discovery, host, bound.port, a.discoveryPort);
  seed.discoveryPort = dport;
  console.log(`boxer seed listening on ${where} (virtual network ${cidr.text}; NAT discovery on port ${dport})`);
  printJoinHint(host, bound.port, file, generated);

  if (!runsCmd) {
    await new Promise<void>((resolve) => {
      const stop = () => resolve();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    relayServer.close();
    await discovery.close();
    await seed.close();
    return;
  }

  const code = await runSeedMember(seed, a.cmd, where, { psk, keys, publicIp: host === '0.0.0.0' ? null : host });
  relayServer.close();
  await discovery.close();
  await seed.close();
  process.exit(code);
}

const log = logger('seed');

/** The NAT discovery server's port: --discovery-port, else the listen port + 1, else (taken) any free port. */
async function listenDiscovery(discovery: DiscoveryServer, host: string, boundPort: number, asked: number | undefined): Promise<number> {
  if (asked !== undefined) {
    if (!(Number.isInteger(asked) && asked > 0 && asked < 65536)) throw new BoxerError('USAGE', `--discovery-port ${asked}: expected a port number`);
    return (await discovery.listen(host, asked)).port;
  }
  // The default (listen port + 1) may be taken: then any free port; agents learn it from the seed.
  return discovery
    .listen(host, boundPort + DISCOVERY_PORT_OFFSET)
    .catch(() => discovery.listen(host, 0))
    .then((x) => x.port);
}

/** Tells the user how members join (where the secret is). */
function printJoinHint(host: string, port: number, file: string | null | undefined, generated: boolean): void {
  const seedArg = `--seed ${host === '0.0.0.0' ? 'THIS_HOST' : host}:${port}`;
  if (generated) console.log(`network secret written to ${file} (readable only by you); copy it to the members`);
  console.log(
    file
      ? `join with: boxer run ${seedArg} --secret-file ${file} -- CMD`
      : `join with: BOXER_SECRET=<the same secret> boxer run ${seedArg} -- CMD`,
  );
}

/**
 * Runs CMD as the seed's own member: the same composition as an agent's (cli/session.ts), the virtual network
 * and the local services over the LocalMember, here the seed's own member. Returns CMD's exit status.
 */
async function runSeedMember(seed: Seed, cmd: string[], where: string, o: { psk: Uint8Array; keys: KeyPair; publicIp: string | null }): Promise<number> {
  const self = new SeedMember(seed, { psk: o.psk, keys: o.keys, io: nativeIo, publicIp: o.publicIp });
  await self.start();
  const vnet = new VirtualNetwork(self, o.keys);
  const member = new MemberServices(self, where, { extra: () => ({ vnet: vnet.status() }) });
  await member.start();
  await vnet.start();
  const code = await runMemberCommand(cmd, member.env(process.env), vnet);
  await vnet.close();
  await member.close();
  await self.close();
  return code;
}

/** The addon's kernel relay, if the addon loads (a seed also runs without it: the relay then pipes in Node). */
function kernelSplice(): KernelSplice | undefined {
  try {
    return native();
  } catch (e) {
    log.info('the native addon is not loadable: the seed relays program connections in Node', { reason: (e as Error).message });
    return undefined;
  }
}

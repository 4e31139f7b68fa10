/**
 * Member and service names: DNS labels in one shared namespace, lowercase (so unique case-insensitively, as
 * resolvers compare them), checked by the seed at join and by every agent in the decoder (src/wire/messages.ts)
 * before a name reaches a file or a route table. A member's name is unique; a service name
 * may be provided by several members but may not equal a member's name. `node-N` is what a member without
 * `--name` is called, so such names are reserved for the member with id N.
 */
import { NAME_RE } from '../constants';
import { BoxerError } from '../util/errors';

const DEFAULT_NAME_RE = /^node-(\d+)$/;

export function defaultName(id: number): string {
  return `node-${id}`;
}

const NAME_RULE = "use lowercase letters, digits and '-', at most 63 characters, not starting or ending with '-'";

/** Why `name` is not a valid name (a lowercase DNS label), or null. */
export function nameProblem(name: string): string | null {
  return NAME_RE.test(name) ? null : `is not a valid name: ${NAME_RULE}`;
}

/** Throws a usage error when `name` is not a DNS label. */
export function checkName(name: string, what: string): string {
  const why = nameProblem(name);
  if (why) throw new BoxerError('USAGE', `${what} ${JSON.stringify(name)} ${why}`);
  return name;
}

export interface NameOwners {
  /** Member name -> member id. */
  members: Map<string, number>;
  /** Service name -> number of members providing it. */
  services: Map<string, number>;
}

/** Why `name` (with `services`) cannot be given to member `id`, or null when it can. */
export function nameConflict(owners: NameOwners, id: number, name: string, services: string[]): string | null {
  const reserved = DEFAULT_NAME_RE.exec(name);
  if (reserved && Number(reserved[1]) !== id) return `the name ${name} is reserved for the member with id ${reserved[1]}`;
  const owner = owners.members.get(name);
  if (owner !== undefined && owner !== id) return `the name ${name} is taken by member ${owner}`;
  if (owners.services.has(name)) return `the name ${name} is taken by a service`;
  for (const s of services) {
    if (DEFAULT_NAME_RE.test(s)) return `the service name ${s} looks like a member's default name`;
    const m = owners.members.get(s);
    if ((m !== undefined && m !== id) || s === name) return `the service name ${s} is taken by a member`;
  }
  return null;
}

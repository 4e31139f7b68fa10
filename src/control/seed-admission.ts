/**
 * How the seed admits a `join`: the key's binding when it has one (the same member on a new connection, or
 * restarted with its kept key), else a claim of a rejoin (a seed that lost its state), else a new id
 * (bindings.ts decides which); it refuses what conflicts (names, a duplicate `boxer lambda run` member) with an
 * error that says why. An admitted member gets its welcome; the others and observers hear of it.
 */
import type { Channel } from '../channel/channel';
import type { Endpoint, MemberInfo, Message, NatKind } from '../wire/messages';
import { fingerprint } from '../crypto/keys';
import { MAX_RUN_KEYS } from '../constants';
import type { Logger } from '../util/log';
import type { Bindings } from './bindings';
import type { Roster, Entry } from './seed-roster';
import type { Watched, WatchHub } from './watch';

type Join = Extract<Message, { t: 'join' }>;

/** What admission needs of the seed. */
export interface AdmissionContext {
  roster: Roster;
  bindings: Bindings;
  watchers: WatchHub;
  log: Logger;
  /** Whether a rejoin may still claim an id no binding holds (seed-relearn.ts). */
  claimsOpen(): boolean;
  /** The welcome for an admitted member. */
  welcome(info: MemberInfo, observed: Endpoint): Message;
  /** Records the bindings (the state file). */
  saveState(): void;
  /** A member joined for the first time (counted in the seed's stats). */
  joined(): void;
  changed(): void;
}

export class Admission {
  /** `boxer lambda run` members admitted: run key -> member id (in admission order, at most MAX_RUN_KEYS). */
  private readonly runKeys = new Map<string, number>();

  constructor(private readonly ctx: AdmissionContext) {}

  /** Admits `m` on `ch`: the member's entry, or null when refused (the member is told why). */
  admit(ch: Channel, remote: Endpoint, m: Join): Entry | null {
    const { roster, bindings } = this.ctx;
    const live = (id: number) => roster.has(id);
    const key = hex(ch.remoteStatic);
    const d = bindings.decide(key, m, { live, keyOf: (x) => roster.get(x)?.info.key, owners: roster.owners(), claimsOpen: this.ctx.claimsOpen() });
    if ('refuse' in d) return this.refuse(ch, d.refuse, d.message);
    const { id, name, bound } = d;
    // At-least-once delivery of `boxer lambda run`'s invocations: one member per (run, index), ever; the same
    // member (its key holds the id) may come back.
    const runKey = m.run ? `${m.run.id}/${m.run.index}` : null;
    const runHolder = runKey === null ? undefined : this.runKeys.get(runKey);
    if (runHolder !== undefined && runHolder !== id) {
      return this.refuse(ch, 'duplicate', `member ${m.run!.index} of run ${m.run!.id} has joined already (as member ${runHolder}): this is a duplicate invocation`);
    }
    const known = roster.get(id);
    const binding = bindings.bind(key, id, name, live);
    if (runKey !== null) this.rememberRun(runKey, id);
    const tag: Watched = { id, name, addr: binding.addr, ...(m.run ? { run: m.run.id, index: m.run.index } : {}) };
    const info: MemberInfo = { id, name, addr: binding.addr, services: m.services, ext: remote, priv: m.priv, nat: m.nat as NatKind, key: ch.remoteStatic, lport: m.lport ?? 0, ...(m.map ? { map: m.map } : {}), ...(m.standby ? { standby: true } : {}) };
    if (known) return this.readmit(known, ch, remote, m, info, tag);
    const entry: Entry = { info, channel: ch, lastSeen: Date.now(), grace: null };
    roster.add(entry);
    this.ctx.joined();
    this.ctx.saveState();
    // The others first, then its welcome (seed-roster.ts, announce): a member names a connection from the
    // newcomer only once it knows it (src/vnet/sources.ts), and the newcomer's program may connect as soon as
    // the welcome is in.
    roster.announce(entry, remote);
    this.ctx.watchers.joined(tag);
    this.ctx.log.info(m.rejoin ? 'member rejoined' : bound ? 'member came back with its key' : 'member joined', { id, name, addr: info.addr, ext: `${remote.ip}:${remote.port}`, key: fingerprint(ch.remoteStatic) });
    this.ctx.changed();
    return entry;
  }

  /** The same key on a new connection: the same process (a rejoin), or the member restarted with its key. */
  private readmit(known: Entry, ch: Channel, remote: Endpoint, m: Join, info: MemberInfo, tag: Watched): Entry {
    if (known.grace) clearTimeout(known.grace);
    const old = known.channel;
    known.channel = ch;
    known.grace = null;
    known.lastSeen = Date.now();
    if (old && old !== ch) old.close();
    if (m.rejoin) {
      Object.assign(known.info, { ext: remote, nat: m.nat, priv: m.priv, ...(m.lport !== undefined ? { lport: m.lport } : {}), ...(m.map ? { map: m.map } : {}) });
      ch.sendMessage(this.ctx.welcome(known.info, remote));
      this.ctx.saveState();
      return known;
    }
    // A new process: the members drop what they knew of the old one (links, connections), then learn the new.
    const { id, name } = info;
    known.info = info;
    this.ctx.saveState();
    ch.sendMessage(this.ctx.welcome(info, remote));
    this.ctx.roster.broadcast({ t: 'left', id, reason: 'dead' }, id);
    this.ctx.roster.broadcast({ t: 'joined', m: info }, id);
    this.ctx.watchers.left(id, 'dead', undefined);
    this.ctx.watchers.joined(tag);
    this.ctx.log.info('member restarted with its key', { id, name, addr: info.addr, ext: `${remote.ip}:${remote.port}`, key: fingerprint(ch.remoteStatic) });
    this.ctx.changed();
    return known;
  }

  private refuse(ch: Channel, code: string, message: string): null {
    this.ctx.log.info('refused a join', { peer: ch.peer, code, reason: message });
    ch.sendMessage({ t: 'error', code, message });
    setTimeout(() => ch.close(), 50).unref();
    return null;
  }

  private rememberRun(key: string, id: number): void {
    this.runKeys.delete(key);
    this.runKeys.set(key, id);
    while (this.runKeys.size > MAX_RUN_KEYS) this.runKeys.delete(this.runKeys.keys().next().value!);
  }
}

export function hex(key: Uint8Array): string {
  return Buffer.from(key).toString('hex');
}

/**
 * The set-up of a peer link on a fresh stream, whatever path made it (dialled, punched, hairpin, relayed):
 * the Noise handshake, then `hello` both ways, then the identity check (the static key must be the member's
 * key from the member list, and the member the one we meant to reach). The result goes to the link table.
 */
import type { Duplex } from 'node:stream';
import { Channel } from '../channel/channel';
import type { KeyPair } from '../crypto/keys';
import type { MemberInfo, Message, PathKind } from '../wire/messages';
import { SIGNAL_TIMEOUT_MS } from '../constants';
import { Link } from './links';
import { MAX_QUEUED_BEFORE_REGISTER } from '../constants';

export interface LinkSetupDeps {
  psk: Uint8Array;
  keys: KeyPair;
  selfId(): number;
  member(id: number): MemberInfo | undefined;
  /** The link table's register (returns the link kept: this one, or one opened meanwhile). */
  register(l: Link): Link;
  /** Every message on the link once registered. */
  onMessage(l: Link, m: Message): void;
  /** Whether we are member `id`'s home: an inbound link is kept as its home link only then (homes.ts). */
  servesHome?(id: number): boolean;
}

export interface SetupSpec {
  /** `init` sends the first hello (and the Noise initiation); `resp` answers. */
  role: 'init' | 'resp';
  /** The member we meant to reach (null: any member of the network). */
  expect: number | null;
  /** The path as the initiator sees it (a responder takes the initiator's word from its hello). */
  path: PathKind;
  endpoint: string;
  home: boolean;
}

const sameKey = (a: Uint8Array, b: Uint8Array) => Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0;

/** Handshake and hello on a fresh stream; rejects (and closes the stream) when it is not the member expected. */
export async function setUpLink(deps: LinkSetupDeps, stream: Duplex, spec: SetupSpec): Promise<Link> {
  const { role, expect, endpoint } = spec;
  const opts = { psk: deps.psk, keys: deps.keys, peer: `peer ${endpoint}` };
  let ch: Channel;
  try {
    ch = role === 'init' ? await Channel.initiate(stream, opts) : await Channel.respond(stream, opts);
  } catch (e) {
    stream.destroy();
    throw e;
  }
  const hello = firstMessage(ch, endpoint, deps);
  const self = deps.selfId();
  if (role === 'init') ch.sendMessage({ t: 'hello', id: self, path: spec.path, home: spec.home });
  let m: Message;
  try {
    m = await hello.first;
  } catch (e) {
    ch.close();
    throw e;
  }
  if (m.t !== 'hello') {
    ch.close(`expected hello on a peer link, got ${m.t}`);
    throw new Error('no hello');
  }
  if (m.path === 'probe') {
    ch.close(); // the seed's connect-back test: the handshake was the answer
    throw new Error('connect-back probe');
  }
  const who = deps.member(m.id);
  if (!who || !sameKey(who.key, ch.remoteStatic) || (expect !== null && m.id !== expect)) {
    ch.close(`peer link from ${endpoint}: key does not match member ${m.id}`);
    throw new Error(`the peer at ${endpoint} is not member ${expect ?? m.id}`);
  }
  let { path, home } = spec;
  if (role === 'resp') {
    // A home link is never closed for the bound: only the members we are the home of may have one.
    home = m.home && (deps.servesHome?.(m.id) ?? true);
    path = m.path;
    ch.sendMessage({ t: 'hello', id: self, path, home });
  }
  const fresh = new Link(m.id, ch, path, endpoint, role === 'init' ? self : m.id, home);
  const kept = deps.register(fresh);
  if (kept === fresh) hello.registered(fresh);
  return kept;
}

/**
 * One listener for the channel's whole life: the first message (the hello, within SIGNAL_TIMEOUT_MS), then
 * messages queued until the link is registered, then every message to `deps.onMessage`.
 */
function firstMessage(ch: Channel, endpoint: string, deps: LinkSetupDeps): { first: Promise<Message>; registered(l: Link): void } {
  let onFirst: ((m: Message) => void) | null = null;
  let link: Link | null = null;
  const queue: Message[] = [];
  const first = new Promise<Message>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no hello from ${endpoint} within ${SIGNAL_TIMEOUT_MS} ms`)), SIGNAL_TIMEOUT_MS);
    onFirst = (m) => {
      clearTimeout(t);
      resolve(m);
    };
    ch.once('close', () => {
      clearTimeout(t);
      reject(new Error(`${endpoint} closed the link during set-up`));
    });
  });
  ch.on('message', (m) => {
    if (onFirst) {
      const f = onFirst;
      onFirst = null;
      f(m);
    } else if (link) deps.onMessage(link, m);
    else if (queue.length < MAX_QUEUED_BEFORE_REGISTER) queue.push(m);
  });
  ch.start();
  return {
    first,
    registered: (l) => {
      link = l;
      for (const q of queue.splice(0)) deps.onMessage(l, q);
    },
  };
}

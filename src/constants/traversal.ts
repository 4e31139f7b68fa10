/**
 * Timers and limits of NAT traversal and peer links: discovery, punching, relays between agents (src/traversal), each with the reason for its value.
 * Part of src/constants (index.ts re-exports every file; the model is wireguard-go's device/constants.go).
 */

// ---- NAT traversal (src/traversal, docs/nat-traversal.md) -----------------------------------------------
/** The seed's discovery port is its control port plus this, unless `boxer seed --discovery-port` says otherwise. */
export const DISCOVERY_PORT_OFFSET = 1;
/**
 * The seed's connect-back test (is the agent reachable from outside?) gives up after this. A NAT drops the
 * unsolicited SYN silently, so a NATed agent always costs the full timeout at join: short, but several cloud
 * round trips (tens of ms) long.
 */
export const CONNECT_BACK_TIMEOUT_MS = 700;
/** A discovery probe's connect, and its reflect after the handshake, must each come within this, else the NAT is `unknown`. */
export const PROBE_TIMEOUT_MS = 3_000;
/**
 * Most peer links an agent keeps open (documented bound; a Lambda function has 1024 descriptors). Beyond it
 * the least recently used link that is not a home link is closed. Links are opened on demand.
 */
export const MAX_LINKS = 64;
/**
 * Most members an open member is the home of (traversal/homes.ts): their home links are never closed for the
 * bound, so they stay well within MAX_LINKS, leaving room for the member's own links.
 */
export const MAX_HOMES_SERVED = 32;
/**
 * Keepalive on every peer link, also its RTT measurement: far inside the 30 s idle timeout of the strictest
 * NATs and the 350 s of AWS NAT gateways, and frequent enough for LINK_DEAD_AFTER_MS.
 */
export const LINK_KEEPALIVE_MS = 1_000;
/** A link silent this long is dead ("within a few seconds"; tolerates 3 lost keepalives). */
export const LINK_DEAD_AFTER_MS = 4_000;
/** A link that carried no traffic of its own (keepalives do not count) for this long is closed, home links excepted. */
export const LINK_IDLE_MS = 120_000;
/** Connecting to a private (LAN) candidate: a LAN answers in well under a millisecond; a wrong guess is dropped silently. */
export const LAN_CONNECT_TIMEOUT_MS = 400;
/** Connecting to an `open` member's listener: a few cloud round trips, with room for one SYN loss (1 s RTO). */
export const DIRECT_CONNECT_TIMEOUT_MS = 2_500;
/**
 * Simultaneous open: both sides start their connect within one signalling round trip of each other; the
 * connection completes with the second SYN (no retransmission needed), so this only bounds a failed punch.
 */
export const PUNCH_TIMEOUT_MS = 2_500;
/** Waiting for the peer's answer to a punch or dial request carried by the seed or a member. */
export const SIGNAL_TIMEOUT_MS = 3_000;
/** The whole opening of a link (every path tried in turn) is bounded by this; `boxer ping` waits for it. */
export const LINK_OPEN_TIMEOUT_MS = 8_000;
/**
 * Members remembered as linking to us because their vnet messages came through the seed (signal.ts): while one
 * is, our answers go through the seed too and we open no link of our own. One entry a member; a bound anyway.
 */
export const MAX_FORWARDED_FROM = 1024;
/**
 * A first vnet message to a member without a link goes through the seed at once; the link opens this much
 * later (peers.ts), so that its handshakes (X25519 on both agents) do not take the CPU from the set-up of the
 * connection that message is for (~1 ms of agent work on a quiet machine, more on a busy one).
 */
export const FIRST_LINK_DELAY_MS = 50;
/** A relayed link retries its direct path this often (it is upgraded when the direct path works). */
export const RELAY_UPGRADE_MS = 15_000;
/** Relay payloads are cut into pieces of at most this size (below MAX_PAYLOAD, so a frame never overflows). */
export const RELAY_CHUNK = 16 * 1024;
/** An application ping (`boxer ping`) over an open link waits this long for its answer. */
export const PING_TIMEOUT_MS = 3_000;
/** A whole ping, link opening included: below CONTROL_TIMEOUT_MS (10 s), so `boxer ping` gets the agent's answer. */
export const PING_TOTAL_MS = 9_000;
/**
 * While the seed is down, the home of a member declares it dead when its home link has been gone this long
 * without the member linking again (it retries within RECONNECT_MAX_MS).
 */
export const HOME_DEATH_GRACE_MS = 3_000;
/** Pause between attempts to reopen a lost home link. */
export const HOME_RETRY_MS = 1_000;
/** The priming connection of a hairpin answer (punch.ts, Punch.prime): one round trip to a public member, at most. */
export const HAIRPIN_PRIME_MS = 500;
/**
 * A link younger than this is never closed to make room (else a burst of new links, more than MAX_LINKS at
 * once, would close each other before their first message): the bound may be exceeded for this long.
 */
export const LINK_MIN_AGE_MS = 2_000;
/** Pause before dialling a hairpin neighbour again after a reset from the gateway (punch.ts, Punch.dialHairpin). */
export const HAIRPIN_REDIAL_MS = 100;

// ---- peer links (src/traversal) --------------------------------------------------------------------------
/** Messages queued on a new link between its hello and its registration (more is a misbehaving peer). */
export const MAX_QUEUED_BEFORE_REGISTER = 64;

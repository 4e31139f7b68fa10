/**
 * Timers and limits of the control plane: handshakes, joins, heartbeats, the seed; names and addresses (src/control), each with the reason for its value.
 * Part of src/constants (index.ts re-exports every file; the model is wireguard-go's device/constants.go).
 */

// ---- control plane timers -------------------------------------------------------------------------------
/**
 * The seed's handshake rate limit per source address (src/control/gate.ts): a bucket of this many, refilled at
 * this rate. Generous, because many functions share one NAT gateway's address and a fleet joins at once: a
 * thousand functions behind one gateway (the barrier at 1000 members, issue 15; the 210-member scale test
 * joins from one address within seconds) must not wait for the refill (512 made the 1000th wait ~4 s); it
 * stops a flood (thousands per second, sustained) from costing the seed its CPU on key exchanges.
 */
export const HANDSHAKE_BURST = 2_048;
export const HANDSHAKE_RATE_PER_S = 128;
/** Sources the rate limit remembers at once (idle ones forgotten first). */
export const MAX_GATE_SOURCES = 10_000;
/** Refused handshakes are logged as one summary line this often (the first of each kind at once). */
export const REFUSAL_SUMMARY_MS = 10_000;
/** A handshake that has not completed by then is abandoned: loopback and LAN round trips are well under it. */
export const HANDSHAKE_TIMEOUT_MS = 5_000;
/**
 * The handshake of a control connection (agent and seed): a join wave is CPU-bound at the seed (a thousand
 * key exchanges, ~1.5 ms each in WebAssembly, in one event loop), so the last of a thousand may take seconds
 * on a busy host; abandoning it at HANDSHAKE_TIMEOUT_MS made the agent retry, which cost the seed another
 * handshake each: measured, 1824 retries and 35 s for a 1000-member barrier. Per source, the rate limit
 * (HANDSHAKE_BURST) still bounds how many a stranger can hold open.
 */
export const CONTROL_HANDSHAKE_TIMEOUT_MS = 20_000;
/** How long `boxer run` tries to reach the seed before it gives up with "seed unreachable". */
export const JOIN_TIMEOUT_MS = 15_000;
/**
 * Bounds of what the shim's socket feeds (a program, buggy or hostile, sends what it likes): programs recorded
 * by HELLO (the oldest forgotten), the length of a program's name, accept() calls waiting for an announcement
 * at once (beyond it: answered at once, unnamed), connections with a pending outcome (beyond it: the oldest
 * settled ETIMEDOUT). Each is far above what one function runs (1024 descriptors).
 */
export const MAX_SHIM_PROGRAMS = 1_024;
export const MAX_PROGRAM_NAME = 64;
export const MAX_ACCEPT_WAITERS = 4_096;
export const MAX_PENDING_OUTCOMES = 8_192;
/** A member file that could not be written (disk full) is tried again this often until it is current. */
export const MEMBER_FILE_RETRY_MS = 1_000;
/**
 * The member file and the route table (util/file-writer.ts) are rewritten at most this often: a change after
 * a quiet spell is written at the end of its turn, a burst of changes (a join wave: hundreds a second at 1000
 * members) once per interval, of the state then, instead of once per change (each an O(members) render and
 * two syscalls). Short beside what a program notices: the shim asks the agent about a member not yet in its
 * route table, and a program reading the member file sees every change within this.
 */
export const FILE_WRITE_INTERVAL_MS = 25;
/**
 * The seed tells the members of joins (and welcomes the newcomers) at most this often (seed-roster.ts): a join
 * after a quiet spell at the end of its turn, a join wave in one message per member per interval instead of
 * one per join (N² messages and syscalls at 1000 members). A join waits at most this long for its welcome.
 */
export const BROADCAST_BATCH_MS = 10;
/** Longest gap between two batches when sending them is slow (seed-roster.ts): a newcomer's longest wait for its welcome. */
export const BROADCAST_BATCH_MAX_MS = 100;
/** Longest `--join-timeout` taken: a day; more is a typo (a function lives at most 15 minutes). */
export const MAX_JOIN_TIMEOUT_S = 86_400;
/**
 * A signal during the join waits this long for a join already under way to finish (so that the seed hears
 * `leave` rather than declaring the member dead seconds later), then the agent exits regardless.
 */
export const JOIN_SIGNAL_GRACE_MS = 1_000;
/**
 * Longest an orderly shutdown (leave, close links, local sockets) may take before the process exits anyway:
 * leave waits LEAVE_TIMEOUT_MS for the seed; nothing a peer does may keep a finished member alive.
 */
export const SHUTDOWN_MAX_MS = 3_000;
/**
 * Agents ping the seed this often. It doubles as the keepalive of the seed connection: far inside the 30 s
 * idle timeout of the strictest NATs and the 350 s of AWS NAT gateways.
 */
export const HEARTBEAT_INTERVAL_MS = 1_000;
/** A member silent for this long is declared dead ("within a few seconds"; tolerates 3 lost heartbeats). */
export const DEAD_AFTER_MS = 4_000;
/**
 * A member whose connection closed without `leave` gets this long to reconnect (an agent riding out a
 * restart of the seed, or a NAT that dropped its flow) before it is declared dead.
 */
export const RECONNECT_GRACE_MS = 2_500;
/** First and largest pause between an agent's attempts to reach a seed it lost. */
export const RECONNECT_MIN_MS = 200;
export const RECONNECT_MAX_MS = 2_000;
/**
 * After a seed restarts, it holds new joins for this long so that the surviving members reconnect first and
 * tell it which ids and addresses are taken: no id or address is ever assigned twice.
 */
export const SEED_RELEARN_MS = 3_000;
/**
 * Most identity bindings (key -> id, address, name) a seed keeps, live members always among them: the state
 * file is rewritten on every join (about 150 bytes per binding, so at most ~600 KB); bindings of members long
 * gone are dropped first, and a dropped member that comes back is a new member.
 */
export const SEED_MAX_BINDINGS = 4096;
/** How long an agent waits for the seed to acknowledge `leave` before it closes anyway. */
export const LEAVE_TIMEOUT_MS = 1_000;
/**
 * When a member's command is stopped (the Lambda deadline, Ctrl-C during `boxer run`'s barrier), it gets SIGTERM
 * and, this much later, SIGKILL: long enough for a program to close its connections, short against the
 * leaveBeforeMs a function keeps for itself (default 20 s).
 */
export const STOP_GRACE_MS = 3_000;
/**
 * How many (run id, index) pairs of `boxer lambda run` a seed remembers to refuse duplicate joins (Lambda
 * delivers asynchronous invocations at least once); the oldest are forgotten past it, bounding its memory.
 */
export const MAX_RUN_KEYS = 65_536;

// ---- names and addresses --------------------------------------------------------------------------------
/** Default listen address of the seed. */
export const DEFAULT_SEED_PORT = 7070;
/** Default virtual network: inside 100.64.0.0/10 (shared address space), which no public host uses. */
export const DEFAULT_NETWORK = '100.96.0.0/16';
/** Shortest network secret accepted: 16 characters; keys are derived from it with keyed BLAKE2b. */
export const MIN_SECRET_LENGTH = 16;
/** Names are DNS labels: lowercase letters, digits and '-', at most 63 characters. */
export const NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** Most services one member may provide; keeps `welcome` bounded. */
export const MAX_SERVICES = 16;
/** Most private address candidates a member may announce. */
export const MAX_CANDIDATES = 8;

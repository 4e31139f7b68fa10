/**
 * Timers and limits of the virtual network: program connections, hand-offs, relays, punch ports, services and draining (src/vnet), each with the reason for its value.
 * Part of src/constants (index.ts re-exports every file; the model is wireguard-go's device/constants.go).
 */

// ---- virtual network: connections (src/vnet, docs/virtual-network.md) -------------------------------------
/** How long an accept() of a direct connection waits for the client's announcement (sent with its SYN). */
export const ANNOUNCE_WAIT_MS = 1_000;
/**
 * The same for a loopback peer that is not one of our hand-offs: on one host (loopback mode) announcements
 * arrive within a millisecond, and a native local client should not wait long for a name it will not get.
 */
export const LOOPBACK_ANNOUNCE_WAIT_MS = 200;
/**
 * How long the far side of a punched connection tries its simultaneous open before reporting ETIMEDOUT (SYN
 * retries are 1 s and more apart). Not the peer links' PUNCH_TIMEOUT_MS: this one punches a program's socket.
 */
export const PUNCH_BACK_TIMEOUT_MS = 5_000;
/**
 * The far side's SYN can reach an `open` client before the client's own SYN left (the announcement raced
 * the shim's connect); the client's kernel then resets it. Punch again, this many times, this far apart.
 */
export const PUNCH_BACK_RETRIES = 5;
export const PUNCH_BACK_RETRY_MS = 40;
/** The far side of a relayed connection connects out to the relay within this (the same budget as a punch back). */
export const RELAY_DIAL_TIMEOUT_MS = PUNCH_BACK_TIMEOUT_MS;
/**
 * When nothing listens on a punched connection's port, the far broker says so first and completes (then
 * resets) the TCP handshake this much later, so that the client's agent knows the outcome before the
 * client's kernel reports the socket connected (getsockopt(SO_ERROR) asks without waiting).
 */
export const REFUSE_NOTICE_MS = 50;
/**
 * A punch request (`open` with a port) is sent again this often until the far side answers, at most
 * OPEN_RESENDS times: a message in flight on a peer link that is being replaced (two members opening links to
 * each other at once keep one) can be lost. The far side handles each request once (by its id). A direct
 * connection's announcement, which gets no answer, is sent twice for the same reason.
 */
export const OPEN_RESEND_MS = 400;
export const OPEN_RESENDS = 4;
/**
 * A far side's success `result`s (which only stop the client's resends: its program learns success from its
 * own kernel) wait this long to travel together, one message per client member instead of one per connection
 * (agent CPU per setup, issue 15). Well under OPEN_RESEND_MS. Refusals and failures are sent at once.
 */
export const RESULT_BATCH_MS = 50;
/** At most this many connection ids in one batched `result` (each id <= 64 characters). */
export const RESULT_BATCH_MAX = 200;
/** How long a far side remembers the punch requests it handled: past the last resend, with room to spare. */
export const OPEN_HANDLED_TTL_MS = 10_000;
/**
 * How long a client waits for a relay to open a port for it, before trying another relay, and then for the
 * far side's answer through it; both inside the CONNECT budget (CONNECT_BUDGET_MS), which cuts them shorter.
 */
export const RELAY_REQUEST_TIMEOUT_MS = 3_000;
/** `open` members tried as relays for one connection (the seed is tried after them). */
export const RELAYS_TRIED = 2;
/** Announcements and outcomes nobody asked for are forgotten after this long. */
export const VNET_STALE_MS = 30_000;
/** The route table is compared and rewritten this often, so link changes (a new `lan` link) reach the shim. */
export const ROUTES_REFRESH_MS = 1_000;
/**
 * Members behind our own NAT get a peer link as soon as they are seen (at most this many at once), so that a
 * program's first connection to one finds its route (LAN or relay) known, instead of waiting for the link.
 */
export const PREWARM_CONCURRENCY = 4;
/**
 * Rounds of the connection set-up path's code run once when the virtual network starts (src/ipc/warm.ts), in
 * slices of WARM_SLICE between the agent's other work: enough calls for V8 to compile and tier up the leaf code
 * (frames, CBOR, seals) that every set-up runs, at a few tens of milliseconds of CPU once.
 */
export const WARM_ROUNDS = 300;
export const WARM_SLICE = 10;
/** Every this many rounds the warm-up also seals a message for a member through the seed (an X25519 each). */
export const WARM_SEAL_EVERY = 30;
/** How long `boxer run` waits for the program's shim to report in before it warns that it did not load. */
export const SHIM_REPORT_WAIT_MS = 3_000;
/** How often it looks while it waits (a program's start takes tens of milliseconds at least). */
export const SHIM_REPORT_POLL_MS = 50;

// ---- virtual network: hand-offs, relay, punch ports (src/vnet) -------------------------------------------
/** A hand-off not claimed by an accept() within this long is dropped (the program is not accepting). */
export const HANDOFF_TTL_MS = 30_000;
/** How long the wake connection may take (a full accept queue): beyond it the hand-off fails. */
export const WAKE_CONNECT_TIMEOUT_MS = 5_000;
/** Both halves of a relayed connection must arrive within this long (a connect's worth of patience). */
export const RELAY_PAIR_TIMEOUT_MS = 10_000;
/**
 * Liveness of both halves of a relayed connection (src/vnet/relay.ts): keepalive after 15 s idle, every 5 s,
 * 3 unanswered probes, and TCP_USER_TIMEOUT 30 s on unacknowledged data. A half whose NAT forgot the flow
 * (restart, `conntrack -F`) is found dead within 30 s (idle: 15 + 3 x 5 s) and the other half is reset,
 * instead of retransmitting for about 15 minutes; below every NAT idle timeout we know (30 s and up), so the
 * relay's side of a live idle connection keeps its mapping, and cheap (one probe per 15 s per idle half).
 */
export const RELAY_KEEPALIVE_IDLE_S = 15;
export const RELAY_KEEPALIVE_INTVL_S = 5;
export const RELAY_KEEPALIVE_COUNT = 3;
export const RELAY_USER_TIMEOUT_MS = 30_000;
/** Most relayed connections being set up at once (each holds a listening port); more are refused. */
export const MAX_PENDING_RELAYS = 256;
/** The far agent's token that opens its half of a relayed connection: 128 random bits, not guessable. */
export const TOKEN_BYTES = 16;
/**
 * Relayed connections spliced in the kernel at once: each holds two threads (64 KiB stacks) and two pipes
 * (256 KiB each at most); beyond this the relay pipes in Node, which costs CPU but no threads.
 */
export const MAX_KERNEL_SPLICES = 512;
/** Ports in the punch-port block (src/vnet/ports.ts): enough that concurrent punched connections from one client rarely share a port. */
export const PUNCH_BLOCK_SIZE = 64;
/**
 * Binds tried while looking for a free block, at most. Ports in TIME_WAIT from sockets without SO_REUSEADDR
 * (a program's earlier client connections, a previous agent in a reused function sandbox) cannot be shared, so
 * the scan walks the range and restarts the block past each such port; a few thousand binds take milliseconds.
 */
export const PUNCH_SCAN_BINDS = 4096;

// ---- services and draining (src/vnet/services.ts, src/vnet/drain.ts) ------------------------------------
/**
 * Default grace period of a drain (`boxer run --drain-grace`): how long a member that leaves its services
 * lets its program's open connections finish before the program is stopped. Requests of a web tier take
 * milliseconds to a few seconds; a Lambda handler needs the rest of its deadline for the stop and the leave.
 */
export const DRAIN_GRACE_MS = 5_000;
/** Largest --drain-grace: a Lambda function lives at most 15 minutes; longer is a typo. */
export const MAX_DRAIN_GRACE_S = 900;
/**
 * A drain never ends before this: the services change travels member -> seed -> every member (one broadcast,
 * milliseconds on a LAN, tens across regions), and a connection a client started just before its route table
 * changed must still arrive and be accepted.
 */
export const DRAIN_SETTLE_MS = 500;
/** How often a drain looks for connections still open (/proc/net/tcp): cheap, and a small share of a request. */
export const DRAIN_POLL_MS = 100;

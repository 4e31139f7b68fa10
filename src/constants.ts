/**
 * Every protocol timer and limit of Boxer, in one place, each with the reason for its value
 * (the model is wireguard-go's device/constants.go). Modules import what they use from here.
 */

// ---- wire -----------------------------------------------------------------------------------------------
/**
 * Protocol version carried in the handshake's clear prologue; a peer with another version is refused.
 * 2: the handshake is standard Noise_XXpsk0_25519_ChaChaPoly_BLAKE2b (1 was a BLAKE2b-256 variant).
 */
export const PROTOCOL_VERSION = 2;
/** Magic bytes opening every handshake, so a stray client (HTTP, a port scanner) is told apart at once. */
export const HANDSHAKE_MAGIC = 'BXR';
/**
 * Largest frame after the handshake. The biggest message is the member list in `welcome`: about 120 bytes of
 * CBOR per member, so 1 MiB leaves room for several thousand members; anything larger is a bug or an attack.
 */
export const MAX_FRAME = 1 << 20;
/** Largest frame before the peer has proved it knows the secret: handshake messages are under 200 bytes. */
export const MAX_HANDSHAKE_FRAME = 1024;

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

// ---- AWS: boxer lambda deploy/run/destroy (src/lambda/aws.ts, docs/lambda.md) -------------------------------
/** Attempts per AWS call (the SDK's standard retry mode: throttling and 5xx back off and retry). */
export const AWS_MAX_ATTEMPTS = 5;
/** Lambda's runtime: Node.js 22 on Amazon Linux 2023 (nodejs20.x can no longer be created). */
export const LAMBDA_RUNTIME = 'nodejs22.x';
/** The handler at the package's root (src/lambda/handler.ts compiled to index.js). */
export const LAMBDA_HANDLER = 'index.handler';
/** Default memory: 1,769 MB is where Lambda gives a function one whole vCPU (the agent and the program share it). */
export const LAMBDA_DEFAULT_MEMORY_MB = 1769;
/** Default timeout: Lambda's maximum, 15 minutes; a member leaves `leaveBeforeMs` before it. */
export const LAMBDA_DEFAULT_TIMEOUT_S = 900;
/** Default /tmp size: Lambda's free 512 MB. */
export const LAMBDA_DEFAULT_EPHEMERAL_MB = 512;
/**
 * An asynchronous event Lambda could not start at once (throttled) is dropped after this long: a member that
 * starts minutes after the others would join a network whose run is over. 300 s covers a burst of cold starts
 * and throttling retries; the API's range is 60 s to 6 h.
 */
export const LAMBDA_MAX_EVENT_AGE_S = 300;
/** Largest zip the API takes inline (CreateFunction / UpdateFunctionCode ZipFile); larger needs S3. */
export const LAMBDA_MAX_ZIP_BYTES = 50 * 1024 * 1024;
/** Largest payload of an asynchronous (Event) invocation: 256 KB (the limit AWS documents for Event invokes). */
export const LAMBDA_MAX_ASYNC_PAYLOAD = 256 * 1024;
/** `deploy` waits at most this long for a new or updated function to become Active / Successful. */
export const LAMBDA_WAIT_READY_S = 300;
/** A freshly made role may not be assumable by Lambda for a few seconds (IAM propagation): CreateFunction retries this often... */
export const LAMBDA_ROLE_RETRY_MS = 3_000;
/** ...and at most this many times (about 30 s, the propagation delay AWS documents as typical). */
export const LAMBDA_ROLE_RETRIES = 10;
/** `boxer lambda run` keeps at most this many Invoke calls in flight (each returns in tens of ms: 20 members start within a second). */
export const LAMBDA_INVOKE_CONCURRENCY = 16;
/**
 * Default of `boxer lambda run --join-timeout`: a cold start of the package (about 1 s), Lambda's own queueing
 * of asynchronous events (seconds, more when throttled) and the join itself, with a wide margin.
 */
export const LAMBDA_RUN_JOIN_TIMEOUT_S = 120;

// ---- inside the function: the handler (src/lambda/handler.ts, docs/lambda.md#handler) -----------------------
/**
 * Default of the event's `leaveBeforeMs`: the command is stopped and the member leaves this long before the
 * function's deadline. It must cover SIGTERM's grace (STOP_GRACE_MS), the leave (LEAVE_TIMEOUT_MS) and the
 * return, with room for a slow program's shutdown.
 */
export const LAMBDA_LEAVE_BEFORE_MS = 20_000;
/** Least time the handler needs left, after leaveBeforeMs is set aside, to join at all; less is refused. */
export const LAMBDA_MIN_RUN_MS = 1_000;
/** Bound on reading the network secret from Secrets Manager or SSM (the SDK retries within it). */
export const LAMBDA_SECRET_FETCH_TIMEOUT_MS = 10_000;
/** An observer of the seed (`boxer lambda run`) pings it this often: the keepalive of its connection, as HEARTBEAT_INTERVAL_MS. */
export const WATCH_PING_MS = 5_000;

// ---- the shim's channel (src/ipc, native/shim/common/ipc.h, docs/shim-protocol.md) -------------------------
// The shim bounds every wait on the agent; the agent answers each request inside the bound (test/unit/budgets).
/** The shim's bound on every request (ipc.h SHIM_IPC_TIMEOUT_MS; test/unit/budgets.test.ts reads it there). */
export const SHIM_IPC_TIMEOUT_MS = 2_000;
/** The shim's bound on the CONNECT of a blocking connect() (ipc.h SHIM_CONNECT_TIMEOUT_MS): it may wait on the network. */
export const SHIM_CONNECT_TIMEOUT_MS = 10_000;
/**
 * How long the shim asks CONNECT_RESULT to wait right after its connect (sockutil.h SHIM_CONNECT_RESULT_WAIT_MS):
 * not at all, the outcome is known when the kernel's connect completes (REFUSE_NOTICE_MS), and a wait would
 * hold the shim's channel across the network.
 */
export const SHIM_CONNECT_RESULT_WAIT_MS = 0;
/** What an answer keeps in hand for its way back to the shim and a busy event loop (a local socket: well under). */
export const SHIM_REPLY_MARGIN_MS = 250;
/**
 * The agent's whole budget for a blocking connect's CONNECT: a first link to a member behind our own NAT (up
 * to LINK_OPEN_TIMEOUT_MS), then relays (RELAYS_TRIED open members and the seed, RELAY_REQUEST_TIMEOUT_MS each,
 * and the far side's answer): 8 + 3 x 3 + 3 s unbounded, so the budget cuts every wait to what is left of it,
 * and answers ETIMEDOUT when it is spent.
 */
export const CONNECT_BUDGET_MS = SHIM_CONNECT_TIMEOUT_MS - SHIM_REPLY_MARGIN_MS;
/** The same for a non-blocking connect(), which the shim waits for only SHIM_IPC_TIMEOUT_MS. */
export const CONNECT_NONBLOCK_BUDGET_MS = SHIM_IPC_TIMEOUT_MS - SHIM_REPLY_MARGIN_MS;
/** Longest a CONNECT_RESULT may ask the agent to wait: inside SHIM_IPC_TIMEOUT_MS, at least what the shim asks. */
export const MAX_RESULT_WAIT_MS = SHIM_IPC_TIMEOUT_MS - 2 * SHIM_REPLY_MARGIN_MS;
/** Most addresses in one RESOLVE answer: 8 + 4 x 256 bytes, inside the channel's 4096-byte frame. */
export const MAX_RESOLVE = 256;

// ---- wire: message limits (src/wire/messages.ts) ---------------------------------------------------------
/** Largest opaque payload (relay data, vnet, forwarded message): well inside MAX_FRAME with its envelope. */
export const MAX_PAYLOAD = 64 * 1024;
/** Generous bound on list lengths in one message; the frame limit bounds the bytes anyway. */
export const MAX_MEMBERS_PER_MESSAGE = 65_536;

// ---- peer links (src/traversal) --------------------------------------------------------------------------
/** Messages queued on a new link between its hello and its registration (more is a misbehaving peer). */
export const MAX_QUEUED_BEFORE_REGISTER = 64;

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

// ---- local control socket (src/ipc/control.ts) -----------------------------------------------------------
/** Longest a client waits for the agent's answer: a ping may open a link first (punch, relay). */
export const CONTROL_TIMEOUT_MS = 10_000;
/** Largest request line accepted: requests are a few dozen bytes. */
export const MAX_CONTROL_REQUEST = 4096;

// ---- commands (src/cli) ----------------------------------------------------------------------------------
/** The demo ends by itself: a bound on how long its members may take (a hang is a bug, not a wait). */
export const DEMO_TIMEOUT_MS = 90_000;
/**
 * `boxer demo --scenario burst`: its length (--seconds) by default and its bounds. The first and last
 * BURST_DEMO_EDGE_S seconds run on the VM member alone (before the functions start, after they left); the
 * functions need a few seconds to join on a loaded machine, so the shortest run leaves them 10 s.
 */
export const BURST_DEMO_SECONDS = 30;
export const BURST_DEMO_EDGE_S = 5;
export const BURST_DEMO_MIN_SECONDS = 20;
export const BURST_DEMO_MAX_SECONDS = 300;

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

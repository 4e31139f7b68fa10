/**
 * Timers and limits of the shim's channel and the local control socket (src/ipc), each with the reason for its value.
 * Part of src/constants (index.ts re-exports every file; the model is wireguard-go's device/constants.go).
 */

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

// ---- local control socket (src/ipc/control.ts) -----------------------------------------------------------
/** Longest a client waits for the agent's answer: a ping may open a link first (punch, relay). */
export const CONTROL_TIMEOUT_MS = 10_000;
/** Largest request line accepted: requests are a few dozen bytes. */
export const MAX_CONTROL_REQUEST = 4096;

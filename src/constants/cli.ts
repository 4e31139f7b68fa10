/**
 * Timers and limits of the commands (src/cli), each with the reason for its value.
 * Part of src/constants (index.ts re-exports every file; the model is wireguard-go's device/constants.go).
 */

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

/**
 * Timers and limits of frames and messages: sizes and limits (src/wire, src/crypto), each with the reason for its value.
 * Part of src/constants (index.ts re-exports every file; the model is wireguard-go's device/constants.go).
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

// ---- wire: message limits (src/wire/messages.ts) ---------------------------------------------------------
/** Largest opaque payload (relay data, vnet, forwarded message): well inside MAX_FRAME with its envelope. */
export const MAX_PAYLOAD = 64 * 1024;
/** Generous bound on list lengths in one message; the frame limit bounds the bytes anyway. */
export const MAX_MEMBERS_PER_MESSAGE = 65_536;

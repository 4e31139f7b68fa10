/* The shim's client of the agent's channel (docs/shim-protocol.md). The channel opens when the library loads
 * (HELLO, not waited for) or else on first use, and reopens after fork() and when the program closed or
 * replaced its descriptor (HELLO, then LISTEN for every port the process listens on). One request/reply at a
 * time per process, matched by request id (replies to earlier requests are dropped); reply-less messages
 * (CONNECTING) are written without waiting for a transaction in progress. Every wait is bounded by
 * SHIM_IPC_TIMEOUT_MS. */
#pragma once
#include <stddef.h>
#include <stdint.h>

/* Bound on every wait on the channel (contract: docs/shim-protocol.md). */
#define SHIM_IPC_TIMEOUT_MS 2000
/* Bound on a blocking connect's CONNECT round trip: the agent route may wait on the network (a first link to a
 * member behind the same NAT, a relay opening a port and the far member answering), like a connect to a
 * distant host. A non-blocking connect keeps SHIM_IPC_TIMEOUT_MS; routes from the table never wait at all. */
#define SHIM_CONNECT_TIMEOUT_MS 10000
/* The channel's descriptor is moved to at least this number, away from the low numbers programs expect. */
#define SHIM_IPC_FD_MIN 900
/* SO_SNDBUF asked for the channel (the kernel caps it at net.core.wmem_max). */
#define SHIM_IPC_SNDBUF (4 << 20)
/* Bound on the writes of HELLO from the library's constructor (the program's start never waits longer). */
#define SHIM_HELLO_TIMEOUT_MS 100

/* Sends one request and waits for its reply. reply gets the reply body (up to cap bytes; *reply_len its
 * length). If rfd is not NULL it gets the descriptor passed with the reply, or -1; a descriptor nobody asked
 * for is closed. Returns 0, or -1 with errno set when the channel failed (no agent, timeout, protocol error:
 * the channel is then closed and the next request reopens it). */
int ipc_request(uint16_t type, const uint8_t *body, size_t body_len, uint8_t *reply, size_t cap,
		size_t *reply_len, int *rfd);

/* Sends one request on a channel of its own, opened for it and closed after (no HELLO: the agent answers any
 * request on any connection of the member's user), and waits for its reply (a descriptor passed with it is
 * closed). For requests that may wait on the network (CONNECT on the agent route: a relay opening a port, a
 * first link): the shared channel's lock is never held across such a wait, so other threads' requests
 * (CONNECT_RESULT, ACCEPTED) go on meanwhile. Bounded like ipc_request. Returns 0, or -1 with errno. */
int ipc_request_alone(uint16_t type, const uint8_t *body, size_t body_len, uint8_t *reply, size_t cap,
		      size_t *reply_len);

/* The outcome of connection conn_id (a CONNECTING's id) if the agent told it unasked (MSG_OUTCOME: a
 * refusal, sent as soon as the far side refused, REFUSE_NOTICE_MS (src/constants/vnet.ts) before the handshake can complete): reads
 * what waits on the channel without waiting, then looks. Returns 1 with *err, else 0 (nothing known: the
 * kernel's outcome is the virtual one). No round trip, no wait for the agent. */
int ipc_outcome(uint64_t conn_id, int32_t *err);

/* Sends one message that has no reply (CONNECTING): one write on the channel (opened first if needed: one
 * HELLO round trip, after a fork); no wait for the agent. Returns 0, or -1 with errno (the channel is then closed). */
int ipc_send(uint16_t type, const uint8_t *body, size_t body_len);

/* From the library's constructor: opens the channel and sends HELLO (no wait for the reply; the descriptor
 * only above SHIM_IPC_FD_MIN). Errors are ignored (debug log); never fails the program's start. */
void ipc_hello_at_load(void);

/* Reports a new listener (already marked listening in the fd table): opens the channel if needed (which
 * reports every listener), else sends LISTEN. *err gets the agent's errno. Returns 0, or -1 with errno. */
int ipc_report_listen(uint16_t port, int32_t *err);

/* 1 if this process currently has an open channel (used to skip UNLISTEN when none was ever sent). */
int ipc_is_open(void);

/* pthread_atfork hooks. */
void ipc_atfork_prepare(void);
void ipc_atfork_parent(void);
void ipc_atfork_child(void);

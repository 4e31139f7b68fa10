/* The shim's client of the agent's channel (docs/shim-protocol.md). One request at a time per process; the
 * channel opens lazily (sending HELLO, then LISTEN for every port the process listens on), and reopens after
 * fork() and when the program closed or replaced its descriptor. Every wait is bounded by
 * SHIM_IPC_TIMEOUT_MS. */
#pragma once
#include <stddef.h>
#include <stdint.h>

/* Bound on every wait on the channel (contract: docs/shim-protocol.md). */
#define SHIM_IPC_TIMEOUT_MS 2000
/* The channel's descriptor is moved to at least this number, away from the low numbers programs expect. */
#define SHIM_IPC_FD_MIN 900

/* Sends one request and waits for its reply. reply gets the reply body (up to cap bytes; *reply_len its
 * length). If rfd is not NULL it gets the descriptor passed with the reply, or -1; a descriptor nobody asked
 * for is closed. Returns 0, or -1 with errno set when the channel failed (no agent, timeout, protocol error:
 * the channel is then closed and the next request reopens it). */
int ipc_request(uint16_t type, const uint8_t *body, size_t body_len, uint8_t *reply, size_t cap,
		size_t *reply_len, int *rfd);

/* Reports a new listener (already marked listening in the fd table): opens the channel if needed (which
 * reports every listener), else sends LISTEN. *err gets the agent's errno. Returns 0, or -1 with errno. */
int ipc_report_listen(uint16_t port, int32_t *err);

/* 1 if this process currently has an open channel (used to skip UNLISTEN when none was ever sent). */
int ipc_is_open(void);

/* pthread_atfork hooks. */
void ipc_atfork_prepare(void);
void ipc_atfork_parent(void);
void ipc_atfork_child(void);

/* The outcomes of a process's connections that the agent told unasked (MSG_OUTCOME, docs/shim-protocol.md: a
 * punched connection refused), kept for SO_ERROR and a blocking connect to read without a round trip. A ring
 * of OUTCOMES_KEPT; the caller serializes (ipc.c holds its ipc_lock). */
#pragma once
#include <stddef.h>
#include <stdint.h>

#define OUTCOMES_KEPT 1024

/* Keeps the outcome in an OUTCOME frame's body (u64 conn_id, i32 errno, little-endian); a short body is ignored. */
void outcomes_put(const uint8_t *body, size_t len);

/* The outcome of conn_id, once: 1 with *err (and forgotten), else 0. */
int outcomes_take(uint64_t conn_id, int32_t *err);

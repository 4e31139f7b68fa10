/* Bounded I/O on the channel's socket (a non-blocking unix stream socket): whole writes, whole reads that take
 * a descriptor passed with SCM_RIGHTS, and reading until the reply to a given request. Every wait ends at a
 * deadline on the monotonic clock. No state: ipc.c holds the channel and its locks and calls these with its
 * descriptor; native/test/test_chanio.c drives them over a socketpair. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "frame.h"

/* Milliseconds on the monotonic clock (what deadlines are written in). */
int64_t chan_now_ms(void);

/* Waits for `events` (POLLIN, POLLOUT) on fd until the deadline. Returns 0 when ready, -1 with errno
 * (ETIMEDOUT; EPIPE when the socket failed). */
int chan_wait(int fd, short events, int64_t deadline);

/* Writes all of buf. Returns 0, or -1 with errno (ETIMEDOUT when the peer does not read in time). */
int chan_send_all(int fd, const uint8_t *buf, size_t len, int64_t deadline);

/* Reads exactly len bytes. A descriptor passed with them goes into *passed when it is -1, else (and any further
 * one) is closed. Returns 0, or -1 with errno (ECONNRESET at end of stream, ETIMEDOUT). */
int chan_recv_all(int fd, uint8_t *buf, size_t len, int *passed, int64_t deadline);

/* Reads frames into in (FRAME_MAX bytes) until the reply to request (type, id): a reply to an earlier request
 * (an id before `id`) is dropped (with its descriptor; on_drop, if not NULL, hears of it); anything else that is
 * not the reply is a protocol error. Returns 0 with the reply's header in *h and its descriptor in *passed
 * (or -1), else -1 with errno (EPROTO: *h is the offending header) and *passed closed and -1. */
int chan_read_reply(int fd, uint16_t type, uint32_t id, uint8_t *in, struct frame_hdr *h, int *passed, int64_t deadline,
		    void (*on_drop)(const struct frame_hdr *h, const uint8_t *body));

/* One request (type, id) written whole, then its reply read into in (FRAME_MAX bytes; header in *h; a descriptor
 * passed with it closed): for a connection used for one request. Returns 0, or -1 with errno. */
int chan_request(int fd, uint16_t type, uint32_t id, const uint8_t *body, size_t body_len, uint8_t *in, struct frame_hdr *h,
		 int64_t deadline);

/* Reads the frames already waiting on fd (none: returns at once), each passed to on_frame with its body (a
 * descriptor passed with one is closed); a frame begun is read whole by the deadline. Returns 0, or -1 with
 * errno. An MSG_OUTCOME frame (unasked, from the agent) also goes to chan_read_reply's on_drop, whatever its id. */
int chan_read_ready(int fd, uint8_t *in, void (*on_frame)(const struct frame_hdr *h, const uint8_t *body), int64_t deadline);

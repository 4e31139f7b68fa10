#define _GNU_SOURCE
#include "ipc.h"

#include "chanio.h"
#include "config.h"
#include "fdtable.h"
#include "frame.h"
#include "libc.h"
#include "log.h"
#include "outcomes.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Two locks, taken in this order:
 *   - ipc_lock: one transaction (request and reply) at a time; opening and dropping the channel;
 *   - send_lock: every write on the channel and the request ids (so ids go out in increasing order), and
 *     every change of ch_* (so ipc_send can write under send_lock alone, without waiting for a transaction
 *     in progress: a reply-less CONNECTING never waits behind another thread's CONNECT_RESULT). */
static pthread_mutex_t ipc_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t send_lock = PTHREAD_MUTEX_INITIALIZER;
static int ch_fd = -1;
static pid_t ch_pid;
static dev_t ch_dev;
static ino_t ch_ino;
static uint32_t ch_gen; /* bumped on every open */
static uint32_t next_id = 1;

/* 1 if ch_fd still is the socket this process opened. */
static int channel_is_ours(void)
{
	struct stat st;
	if (ch_fd < 0)
		return 0;
	if (fstat(ch_fd, &st) < 0)
		return 0;
	return st.st_dev == ch_dev && st.st_ino == ch_ino;
}

static int channel_usable(void)
{
	return ch_fd >= 0 && ch_pid == getpid() && channel_is_ours();
}

/* ipc_lock held. */
static void channel_drop(void)
{
	pthread_mutex_lock(&send_lock);
	if (ch_fd >= 0 && channel_is_ours()) /* a fork child closes its copy of the parent's channel */
		REAL(close)(ch_fd);
	ch_fd = -1;
	pthread_mutex_unlock(&send_lock);
}

/* Writes one frame with the next request id (send_lock held). */
static int send_frame(uint16_t type, const uint8_t *body, size_t body_len, uint32_t *idp, int64_t deadline)
{
	uint8_t out[FRAME_MAX];
	uint32_t id = next_id++;
	if (next_id == 0)
		next_id = 1;
	size_t len = frame_encode(out, sizeof out, type, 0, id, body, body_len);
	if (len == 0) {
		errno = EMSGSIZE;
		return -1;
	}
	if (idp)
		*idp = id;
	return chan_send_all(ch_fd, out, len, deadline);
}

/* The reply's body (frame in `in`, header h) into reply, at most cap bytes; its length in *reply_len. */
static void copy_reply(const uint8_t *in, const struct frame_hdr *h, uint8_t *reply, size_t cap, size_t *reply_len)
{
	size_t n = h->len - FRAME_HDR;
	if (n > cap)
		n = cap;
	if (reply)
		memcpy(reply, in + FRAME_HDR, n);
	if (reply_len)
		*reply_len = n;
}

/* Not the reply at hand: an outcome is kept (outcomes.c), a late reply dropped. */
static void log_dropped(const struct frame_hdr *h, const uint8_t *body)
{
	if (h->type == MSG_OUTCOME) {
		outcomes_put(body, h->len - FRAME_HDR);
		return;
	}
	shim_debug("dropping a reply (type %u) to earlier request %u", h->type, h->id);
}

/* One round trip on the open channel (ipc_lock held). Replies are matched by request id: ids go out in
 * increasing order (send_lock), and a reply to an earlier request (HELLO and LISTEN, sent without waiting when
 * the channel opens; a reply the agent sent to a reply-less message) is read and dropped; anything else that
 * is not this request's reply (a later id, another type) is a protocol error. */
static int transact(uint16_t type, const uint8_t *body, size_t body_len, uint8_t *reply, size_t cap,
		    size_t *reply_len, int *rfd)
{
	uint8_t in[FRAME_MAX];
	uint32_t id = 0;
	int fd = -1;
	/* A blocking CONNECT may wait on the network (the agent route); a non-blocking one keeps the short bound. */
	int blocking_connect = type == MSG_CONNECT && body_len >= 12 && !(body[8] & CONNECT_FLAG_NONBLOCK);
	int64_t deadline = chan_now_ms() + (blocking_connect ? SHIM_CONNECT_TIMEOUT_MS : SHIM_IPC_TIMEOUT_MS);
	pthread_mutex_lock(&send_lock);
	int rc = send_frame(type, body, body_len, &id, deadline);
	pthread_mutex_unlock(&send_lock);
	if (rc < 0)
		goto fail;
	struct frame_hdr h = {0};
	if (chan_read_reply(ch_fd, type, id, in, &h, &fd, deadline, log_dropped) < 0) {
		if (errno == EPROTO)
			shim_debug("protocol error: reply len %u type %u id %u to request type %u id %u", h.len, h.type, h.id,
				   type, id);
		goto fail;
	}
	copy_reply(in, &h, reply, cap, reply_len);
	if (rfd)
		*rfd = fd;
	else if (fd >= 0)
		REAL(close)(fd);
	return 0;
fail:;
	int saved = errno;
	if (fd >= 0)
		REAL(close)(fd);
	channel_drop();
	errno = saved;
	return -1;
}

/* Connects to the agent's socket: a non-blocking descriptor moved to SHIM_IPC_FD_MIN or above (at_load: there
 * or not at all), with room in its send buffer. Returns it, or -1 with errno. */
static int channel_connect(int at_load)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	memcpy(sun.sun_path, shim_cfg.sock_path, sizeof sun.sun_path - 1);
	int s = REAL(socket)(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s < 0)
		return -1;
	if (REAL(connect)(s, (struct sockaddr *)&sun, sizeof sun) < 0) {
		int saved = errno;
		REAL(close)(s);
		shim_debug("cannot reach the agent at %s: %s", shim_cfg.sock_path, strerror(saved));
		errno = saved;
		return -1;
	}
	int high = REAL(fcntl)(s, F_DUPFD_CLOEXEC, SHIM_IPC_FD_MIN);
	if (high >= 0) {
		REAL(close)(s);
		s = high;
	} else if (at_load) {
		int saved = errno;
		REAL(close)(s);
		shim_debug("no descriptor >= %d for the channel: %s", SHIM_IPC_FD_MIN, strerror(saved));
		errno = saved;
		return -1;
	}
	/* Room for bursts of reply-less CONNECTING while the agent is busy (a unix stream socket charges ~768
	 * bytes per small message: the default 208 KiB holds ~270): a full buffer would make connect() wait. Best
	 * effort, capped by net.core.wmem_max. */
	int sndbuf = SHIM_IPC_SNDBUF;
	REAL(setsockopt)(s, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
	return s;
}

/* Opens the channel (ipc_lock held) and sends HELLO, then LISTEN for every port this process listens on
 * (inherited over fork, or opened before the channel broke), each a round trip. at_load (the constructor):
 * HELLO only, without waiting for the reply (the next transact() drops it), its write bounded by
 * SHIM_HELLO_TIMEOUT_MS; and rather no channel than one on a low descriptor. */
static int channel_open(int at_load)
{
	int s = channel_connect(at_load);
	if (s < 0)
		return -1;
	struct stat st;
	if (fstat(s, &st) < 0) {
		REAL(close)(s);
		return -1;
	}
	pthread_mutex_lock(&send_lock);
	ch_fd = s;
	ch_pid = getpid();
	ch_dev = st.st_dev;
	ch_ino = st.st_ino;
	ch_gen++;
	pthread_mutex_unlock(&send_lock);
	uint8_t body[FRAME_MAX], reply[16];
	size_t n = body_hello(body, (uint32_t)ch_pid, program_invocation_short_name);
	int np = 0;
	if (at_load) {
		/* The program's start does not wait for the agent: the reply is dropped by the next transact(). */
		pthread_mutex_lock(&send_lock);
		int rc = send_frame(MSG_HELLO, body, n, NULL, chan_now_ms() + SHIM_HELLO_TIMEOUT_MS);
		pthread_mutex_unlock(&send_lock);
		if (rc < 0) {
			int saved = errno;
			channel_drop();
			errno = saved;
			return -1;
		}
	} else {
		if (transact(MSG_HELLO, body, n, reply, sizeof reply, &n, NULL) < 0)
			return -1;
		/* Listeners this process holds (inherited over fork, or opened before the channel broke). */
		uint16_t ports[256];
		np = fdt_listening_ports(ports, 256);
		for (int i = 0; i < np; i++) {
			n = body_port(body, ports[i]);
			if (transact(MSG_LISTEN, body, n, reply, sizeof reply, &n, NULL) < 0)
				return -1;
		}
	}
	shim_debug("channel open (fd %d), %d listener(s) reported", s, np);
	return 0;
}

/* Makes sure this process has its own open channel (ipc_lock held). */
static int channel_ensure(void)
{
	if (ch_fd >= 0 && (ch_pid != getpid() || !channel_is_ours())) {
		if (ch_pid != getpid())
			shim_debug("reopening the channel after fork");
		channel_drop();
	}
	if (ch_fd < 0)
		return channel_open(0);
	return 0;
}

int ipc_request(uint16_t type, const uint8_t *body, size_t body_len, uint8_t *reply, size_t cap,
		size_t *reply_len, int *rfd)
{
	int saved = errno, rc = -1;
	if (rfd)
		*rfd = -1;
	if (!shim_enabled()) {
		errno = ENOTCONN;
		return -1;
	}
	pthread_mutex_lock(&ipc_lock);
	if (channel_ensure() < 0)
		goto out;
	rc = transact(type, body, body_len, reply, cap, reply_len, rfd);
out:
	if (rc == 0)
		errno = saved;
	pthread_mutex_unlock(&ipc_lock);
	return rc;
}

int ipc_request_alone(uint16_t type, const uint8_t *body, size_t body_len, uint8_t *reply, size_t cap, size_t *reply_len)
{
	int saved = errno, s = shim_enabled() ? channel_connect(0) : -1;
	if (s < 0)
		return -1;
	/* A blocking CONNECT may wait on the network (the agent route); a non-blocking one keeps the short bound. */
	int blocking_connect = type == MSG_CONNECT && body_len >= 12 && !(body[8] & CONNECT_FLAG_NONBLOCK);
	int64_t deadline = chan_now_ms() + (blocking_connect ? SHIM_CONNECT_TIMEOUT_MS : SHIM_IPC_TIMEOUT_MS);
	uint8_t in[FRAME_MAX];
	struct frame_hdr h = {0};
	int rc = chan_request(s, type, 1, body, body_len, in, &h, deadline), err = errno;
	REAL(close)(s);
	if (rc < 0) {
		shim_debug("request type %u on a channel of its own failed: %s", type, strerror(err));
		errno = err;
		return -1;
	}
	copy_reply(in, &h, reply, cap, reply_len);
	errno = saved;
	return 0;
}

int ipc_outcome(uint64_t conn_id, int32_t *err)
{
	int saved = errno;
	uint8_t in[FRAME_MAX];
	pthread_mutex_lock(&ipc_lock);
	if (shim_enabled() && channel_usable() && chan_read_ready(ch_fd, in, log_dropped, chan_now_ms() + SHIM_IPC_TIMEOUT_MS) < 0)
		channel_drop();
	int found = outcomes_take(conn_id, err);
	pthread_mutex_unlock(&ipc_lock);
	errno = saved;
	return found;
}

int ipc_send(uint16_t type, const uint8_t *body, size_t body_len)
{
	int saved = errno, rc;
	if (!shim_enabled()) {
		errno = ENOTCONN;
		return -1;
	}
	/* Fast path: the channel is open; write under send_lock only. */
	pthread_mutex_lock(&send_lock);
	if (channel_usable()) {
		uint32_t gen = ch_gen;
		rc = send_frame(type, body, body_len, NULL, chan_now_ms() + SHIM_IPC_TIMEOUT_MS);
		pthread_mutex_unlock(&send_lock);
		if (rc == 0) {
			errno = saved;
			return 0;
		}
		saved = errno;
		pthread_mutex_lock(&ipc_lock);
		if (ch_gen == gen)
			channel_drop(); /* a partial frame would desynchronize the stream */
		pthread_mutex_unlock(&ipc_lock);
		errno = saved;
		return -1;
	}
	pthread_mutex_unlock(&send_lock);
	/* Slow path: (re)open the channel first (HELLO and LISTENs are not waited for either). */
	pthread_mutex_lock(&ipc_lock);
	rc = channel_ensure();
	if (rc == 0) {
		pthread_mutex_lock(&send_lock);
		rc = send_frame(type, body, body_len, NULL, chan_now_ms() + SHIM_IPC_TIMEOUT_MS);
		pthread_mutex_unlock(&send_lock);
		if (rc < 0) {
			int e = errno;
			channel_drop();
			errno = e;
		}
	}
	if (rc == 0)
		errno = saved;
	pthread_mutex_unlock(&ipc_lock);
	return rc;
}

void ipc_hello_at_load(void)
{
	if (!shim_enabled())
		return;
	int saved = errno;
	pthread_mutex_lock(&ipc_lock);
	if (ch_fd < 0 && channel_open(1) < 0)
		shim_debug("HELLO at load failed: %s", strerror(errno));
	pthread_mutex_unlock(&ipc_lock);
	errno = saved;
}

int ipc_report_listen(uint16_t port, int32_t *err)
{
	int saved = errno, rc = -1;
	*err = 0;
	if (!shim_enabled()) {
		errno = ENOTCONN;
		return -1;
	}
	pthread_mutex_lock(&ipc_lock);
	if (ch_fd >= 0 && (ch_pid != getpid() || !channel_is_ours()))
		channel_drop();
	if (ch_fd < 0) {
		rc = channel_open(0); /* reports every listener in the table, this one included */
	} else {
		uint8_t body[8], reply[16];
		size_t n = body_port(body, port);
		rc = transact(MSG_LISTEN, body, n, reply, sizeof reply, &n, NULL);
		if (rc == 0 && parse_errno_reply(reply, n, err) < 0)
			*err = 0;
	}
	if (rc == 0)
		errno = saved;
	pthread_mutex_unlock(&ipc_lock);
	return rc;
}

int ipc_is_open(void)
{
	pthread_mutex_lock(&ipc_lock);
	int open = ch_fd >= 0 && ch_pid == getpid();
	pthread_mutex_unlock(&ipc_lock);
	return open;
}

void ipc_atfork_prepare(void)
{
	pthread_mutex_lock(&ipc_lock);
	pthread_mutex_lock(&send_lock);
}
void ipc_atfork_parent(void)
{
	pthread_mutex_unlock(&send_lock);
	pthread_mutex_unlock(&ipc_lock);
}
void ipc_atfork_child(void)
{
	pthread_mutex_init(&send_lock, NULL);
	pthread_mutex_init(&ipc_lock, NULL);
}

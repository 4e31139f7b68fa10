#define _GNU_SOURCE
#include "ipc.h"

#include "config.h"
#include "fdtable.h"
#include "frame.h"
#include "libc.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t ipc_lock = PTHREAD_MUTEX_INITIALIZER;
static int ch_fd = -1;
static pid_t ch_pid;
static dev_t ch_dev;
static ino_t ch_ino;
static uint32_t next_id = 1;

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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

static void channel_drop(void)
{
	if (ch_fd >= 0 && channel_is_ours())
		REAL(close)(ch_fd);
	ch_fd = -1;
}

/* Waits for events on ch_fd until the deadline. Returns 0 when ready, -1 with errno on timeout/failure. */
static int wait_fd(short events, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - now_ms();
		if (left <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		struct pollfd p = {.fd = ch_fd, .events = events};
		int rc = poll(&p, 1, (int)left);
		if (rc > 0) {
			if (p.revents & (POLLERR | POLLNVAL)) {
				errno = EPIPE;
				return -1;
			}
			return 0;
		}
		if (rc < 0 && errno != EINTR)
			return -1;
	}
}

static int send_all(const uint8_t *buf, size_t len, int64_t deadline)
{
	size_t off = 0;
	while (off < len) {
		ssize_t n = send(ch_fd, buf + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (wait_fd(POLLOUT, deadline) < 0)
				return -1;
			continue;
		}
		return -1;
	}
	return 0;
}

/* Reads exactly len bytes; the first read takes a passed descriptor into *fd (if any). */
static int recv_all(uint8_t *buf, size_t len, int *fd, int64_t deadline)
{
	size_t off = 0;
	while (off < len) {
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(sizeof(int) * 4)];
		} ctl;
		struct iovec iov = {buf + off, len - off};
		struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof ctl.b};
		ssize_t n = recvmsg(ch_fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n > 0) {
			for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
				if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
					continue;
				size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
				for (size_t i = 0; i < k; i++) {
					int f;
					memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof f);
					if (*fd < 0)
						*fd = f;
					else
						REAL(close)(f);
				}
			}
			off += (size_t)n;
			continue;
		}
		if (n == 0) {
			errno = ECONNRESET;
			return -1;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if (wait_fd(POLLIN, deadline) < 0)
				return -1;
			continue;
		}
		return -1;
	}
	return 0;
}

/* One round trip on the open channel (lock held). */
static int transact(uint16_t type, const uint8_t *body, size_t body_len, uint8_t *reply, size_t cap,
		    size_t *reply_len, int *rfd)
{
	uint8_t out[FRAME_MAX], in[FRAME_MAX];
	uint32_t id = next_id++;
	size_t len = frame_encode(out, sizeof out, type, 0, id, body, body_len);
	int fd = -1;
	if (len == 0) {
		errno = EMSGSIZE;
		return -1;
	}
	int64_t deadline = now_ms() + SHIM_IPC_TIMEOUT_MS;
	if (send_all(out, len, deadline) < 0)
		goto fail;
	struct frame_hdr h;
	if (recv_all(in, FRAME_HDR, &fd, deadline) < 0)
		goto fail;
	if (frame_decode_hdr(in, &h) < 0 || h.id != id || h.type != type) {
		shim_debug("protocol error: reply len %u type %u id %u to request type %u id %u", h.len, h.type,
			   h.id, type, id);
		errno = EPROTO;
		goto fail;
	}
	if (recv_all(in + FRAME_HDR, h.len - FRAME_HDR, &fd, deadline) < 0)
		goto fail;
	size_t n = h.len - FRAME_HDR;
	if (n > cap)
		n = cap;
	if (reply)
		memcpy(reply, in + FRAME_HDR, n);
	if (reply_len)
		*reply_len = n;
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

static int channel_open(void)
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
	}
	struct stat st;
	if (fstat(s, &st) < 0) {
		REAL(close)(s);
		return -1;
	}
	ch_fd = s;
	ch_pid = getpid();
	ch_dev = st.st_dev;
	ch_ino = st.st_ino;

	uint8_t body[FRAME_MAX], reply[16];
	size_t n = body_hello(body, (uint32_t)ch_pid, program_invocation_short_name);
	if (transact(MSG_HELLO, body, n, reply, sizeof reply, &n, NULL) < 0)
		return -1;
	/* Listeners this process holds (inherited over fork, or opened before the channel broke). */
	uint16_t ports[256];
	int np = fdt_listening_ports(ports, 256);
	for (int i = 0; i < np; i++) {
		n = body_port(body, ports[i]);
		if (transact(MSG_LISTEN, body, n, reply, sizeof reply, &n, NULL) < 0)
			return -1;
	}
	shim_debug("channel open (fd %d), %d listener(s) reported", ch_fd, np);
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
	if (ch_fd >= 0 && (ch_pid != getpid() || !channel_is_ours())) {
		if (ch_pid != getpid())
			shim_debug("reopening the channel after fork");
		channel_drop();
	}
	if (ch_fd < 0 && channel_open() < 0)
		goto out;
	rc = transact(type, body, body_len, reply, cap, reply_len, rfd);
out:
	if (rc == 0)
		errno = saved;
	pthread_mutex_unlock(&ipc_lock);
	return rc;
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
		rc = channel_open(); /* reports every listener in the table, this one included */
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

void ipc_atfork_prepare(void) { pthread_mutex_lock(&ipc_lock); }
void ipc_atfork_parent(void) { pthread_mutex_unlock(&ipc_lock); }
void ipc_atfork_child(void) { pthread_mutex_init(&ipc_lock, NULL); }

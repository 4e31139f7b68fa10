#define _GNU_SOURCE
#include "chanio.h"

#include "libc.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int64_t chan_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int chan_wait(int fd, short events, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - chan_now_ms();
		if (left <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		struct pollfd p = {.fd = fd, .events = events};
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

int chan_send_all(int fd, const uint8_t *buf, size_t len, int64_t deadline)
{
	size_t off = 0;
	while (off < len) {
		ssize_t n = send(fd, buf + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (chan_wait(fd, POLLOUT, deadline) < 0)
				return -1;
			continue;
		}
		return -1;
	}
	return 0;
}

/* Takes the descriptors of one message's SCM_RIGHTS: the first into *passed if it is free, the rest closed. */
static void take_fds(struct msghdr *msg, int *passed)
{
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int f;
			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof f);
			if (*passed < 0)
				*passed = f;
			else
				REAL(close)(f);
		}
	}
}

int chan_recv_all(int fd, uint8_t *buf, size_t len, int *passed, int64_t deadline)
{
	size_t off = 0;
	while (off < len) {
		union {
			struct cmsghdr h;
			char b[CMSG_SPACE(sizeof(int) * 4)];
		} ctl;
		struct iovec iov = {buf + off, len - off};
		struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.b, .msg_controllen = sizeof ctl.b};
		ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
		if (n > 0) {
			take_fds(&msg, passed);
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
			if (chan_wait(fd, POLLIN, deadline) < 0)
				return -1;
			continue;
		}
		return -1;
	}
	return 0;
}

int chan_read_reply(int fd, uint16_t type, uint32_t id, uint8_t *in, struct frame_hdr *h, int *passed, int64_t deadline,
		    void (*on_drop)(const struct frame_hdr *h, const uint8_t *body))
{
	*passed = -1;
	for (;;) {
		if (chan_recv_all(fd, in, FRAME_HDR, passed, deadline) < 0)
			break;
		if (frame_decode_hdr(in, h) < 0) {
			errno = EPROTO;
			break;
		}
		if (chan_recv_all(fd, in + FRAME_HDR, h->len - FRAME_HDR, passed, deadline) < 0)
			break;
		if (h->id == id && h->type == type)
			return 0;
		if (h->type == MSG_OUTCOME || (h->id != id && (int32_t)(id - h->id) > 0)) {
			if (on_drop)
				on_drop(h, in + FRAME_HDR);
			if (*passed >= 0)
				REAL(close)(*passed);
			*passed = -1;
			continue;
		}
		errno = EPROTO;
		break;
	}
	int saved = errno;
	if (*passed >= 0)
		REAL(close)(*passed);
	*passed = -1;
	errno = saved;
	return -1;
}

int chan_read_ready(int fd, uint8_t *in, void (*on_frame)(const struct frame_hdr *h, const uint8_t *body), int64_t deadline)
{
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int rc = poll(&p, 1, 0);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc <= 0 || !(p.revents & POLLIN))
			return rc < 0 ? -1 : 0;
		int passed = -1;
		struct frame_hdr h;
		if (chan_recv_all(fd, in, FRAME_HDR, &passed, deadline) < 0)
			return -1;
		if (frame_decode_hdr(in, &h) < 0) {
			errno = EPROTO;
			return -1;
		}
		if (chan_recv_all(fd, in + FRAME_HDR, h.len - FRAME_HDR, &passed, deadline) < 0)
			return -1;
		if (passed >= 0)
			REAL(close)(passed);
		on_frame(&h, in + FRAME_HDR);
	}
}

int chan_request(int fd, uint16_t type, uint32_t id, const uint8_t *body, size_t body_len, uint8_t *in, struct frame_hdr *h,
		 int64_t deadline)
{
	uint8_t out[FRAME_MAX];
	size_t len = frame_encode(out, sizeof out, type, 0, id, body, body_len);
	int passed = -1;
	if (len == 0) {
		errno = EMSGSIZE;
		return -1;
	}
	if (chan_send_all(fd, out, len, deadline) < 0 || chan_read_reply(fd, type, id, in, h, &passed, deadline, NULL) < 0)
		return -1;
	if (passed >= 0)
		REAL(close)(passed);
	return 0;
}

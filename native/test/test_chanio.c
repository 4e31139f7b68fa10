/* The channel's bounded I/O (shim/common/chanio.c) over a socketpair: whole writes and reads, a descriptor
 * passed with SCM_RIGHTS, reading until a request's reply (earlier replies dropped, anything else a protocol
 * error), and every wait ending at its deadline. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "chanio.h"
#include "check.h"

static int drops;
static void on_drop(const struct frame_hdr *h, const uint8_t *body)
{
	(void)h;
	(void)body;
	drops++;
}

/* Writes one frame, with descriptor `fd` attached when it is >= 0. */
static void put_frame(int s, uint16_t type, uint32_t id, const char *body, int fd)
{
	uint8_t buf[FRAME_MAX];
	size_t len = frame_encode(buf, sizeof buf, type, 0, id, body, strlen(body));
	struct iovec iov = {buf, len};
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	if (fd >= 0) {
		msg.msg_control = ctl.b;
		msg.msg_controllen = sizeof ctl.b;
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof fd);
	}
	CHECK(sendmsg(s, &msg, 0) == (ssize_t)len);
}

/* Whole writes and reads; a reply found past an earlier one, with its descriptor. */
static void test_io(int sv[2])
{
	uint8_t in[FRAME_MAX];
	struct frame_hdr h;
	int passed = -1;
	/* whole writes and reads */
	CHECK(chan_send_all(sv[0], (const uint8_t *)"hello", 5, chan_now_ms() + 1000) == 0);
	CHECK(chan_recv_all(sv[1], in, 5, &passed, chan_now_ms() + 1000) == 0 && memcmp(in, "hello", 5) == 0);
	CHECK(passed == -1);

	/* an earlier request's reply (and its descriptor) is dropped; the reply comes with its descriptor */
	int p[2];
	CHECK(pipe(p) == 0);
	put_frame(sv[0], MSG_LISTEN, 5, "old", p[0]);
	put_frame(sv[0], MSG_CONNECT, 7, "reply", p[1]);
	CHECK(chan_read_reply(sv[1], MSG_CONNECT, 7, in, &h, &passed, chan_now_ms() + 1000, on_drop) == 0);
	CHECK(drops == 1 && h.id == 7 && h.type == MSG_CONNECT && h.len == FRAME_HDR + 5);
	CHECK(memcmp(in + FRAME_HDR, "reply", 5) == 0);
	CHECK(passed >= 0 && write(passed, "x", 1) == 1); /* the pipe's write end */
	close(passed);
	close(p[0]);
	close(p[1]);
}

/* Protocol errors: a later id, another type, a header out of bounds. */
static void test_protocol_errors(int sv[2])
{
	uint8_t in[FRAME_MAX];
	struct frame_hdr h;
	int passed = -1;
	/* a later id, or another type under this id: a protocol error naming the frame */
	put_frame(sv[0], MSG_CONNECT, 9, "", -1);
	errno = 0;
	CHECK(chan_read_reply(sv[1], MSG_CONNECT, 8, in, &h, &passed, chan_now_ms() + 1000, NULL) == -1 && errno == EPROTO);
	CHECK(h.id == 9 && passed == -1);
	put_frame(sv[0], MSG_RESOLVE, 10, "", -1);
	CHECK(chan_read_reply(sv[1], MSG_CONNECT, 10, in, &h, &passed, chan_now_ms() + 1000, NULL) == -1 && errno == EPROTO);

	/* a header whose length is out of bounds */
	uint8_t bad[FRAME_HDR] = {0};
	put_u32(bad, FRAME_MAX + 1);
	CHECK(chan_send_all(sv[0], bad, sizeof bad, chan_now_ms() + 1000) == 0);
	CHECK(chan_read_reply(sv[1], MSG_CONNECT, 11, in, &h, &passed, chan_now_ms() + 1000, NULL) == -1 && errno == EPROTO);
}

/* Every wait ends: at the deadline, or at the end of the stream. */
static void test_bounds(int sv[2])
{
	uint8_t in[FRAME_MAX];
	struct frame_hdr h;
	int passed = -1;
	/* nothing comes: the wait ends at the deadline */
	int64_t t0 = chan_now_ms();
	CHECK(chan_read_reply(sv[1], MSG_CONNECT, 12, in, &h, &passed, t0 + 50, NULL) == -1 && errno == ETIMEDOUT);
	CHECK(chan_now_ms() - t0 >= 50 && chan_now_ms() - t0 < 1000);

	/* the peer does not read: the write ends at the deadline */
	static uint8_t big[1 << 16];
	int full = 0;
	for (int i = 0; i < 1024 && !full; i++)
		full = chan_send_all(sv[0], big, sizeof big, chan_now_ms() + 20) < 0;
	CHECK(full && errno == ETIMEDOUT);

	/* the peer closes: end of stream */
	close(sv[0]);
	int e = 0;
	for (int i = 0; i < 1024 && e == 0; i++)
		if (chan_recv_all(sv[1], big, sizeof big, &passed, chan_now_ms() + 1000) < 0)
			e = errno;
	CHECK(e == ECONNRESET);
}

int main(void)
{
	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) == 0);
	test_io(sv);
	test_protocol_errors(sv);
	test_bounds(sv);
	close(sv[1]);
	return check_done("test_chanio");
}

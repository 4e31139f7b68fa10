/* Frames of docs/shim-protocol.md: header layout (little-endian), bodies, reply parsing, bounds. */
#include <string.h>

#include "check.h"
#include "frame.h"

/* Long by design: one check after another on shared buffers, each section commented, reading as the spec. */
int main(void)
{
	uint8_t buf[FRAME_MAX], body[FRAME_MAX];
	size_t n = body_connect(body, 0x64600003, 8080, 40000, CONNECT_FLAG_NONBLOCK);
	CHECK(n == 12);
	CHECK(body[0] == 100 && body[1] == 96 && body[2] == 0 && body[3] == 3); /* network order */
	CHECK(body[4] == (8080 & 0xff) && body[5] == (8080 >> 8));              /* u16 host (LE) order */
	CHECK(get_u16(body + 6) == 40000 && get_u32(body + 8) == 1);
	size_t len = frame_encode(buf, sizeof buf, MSG_CONNECT, 0, 0x01020304, body, n);
	CHECK(len == 24);
	CHECK(buf[0] == 24 && buf[1] == 0 && buf[2] == 0 && buf[3] == 0);
	CHECK(buf[4] == 2 && buf[5] == 0 && buf[8] == 4 && buf[11] == 1);
	struct frame_hdr h;
	CHECK(frame_decode_hdr(buf, &h) == 0 && h.len == 24 && h.type == MSG_CONNECT && h.id == 0x01020304);
	CHECK(memcmp(buf + FRAME_HDR, body, n) == 0);

	/* bounds */
	CHECK(frame_encode(buf, sizeof buf, 1, 0, 1, body, FRAME_MAX - FRAME_HDR + 1) == 0);
	CHECK(frame_encode(buf, 20, 1, 0, 1, body, 12) == 0);
	put_u32(buf, 11);
	CHECK(frame_decode_hdr(buf, &h) == -1);
	put_u32(buf, FRAME_MAX + 1);
	CHECK(frame_decode_hdr(buf, &h) == -1);

	/* request bodies */
	n = body_hello(body, 1234, "python3");
	CHECK(n == 11 && get_u32(body) == 1234 && memcmp(body + 4, "python3", 7) == 0);
	n = body_connecting(body, 0x64600003, 8080, 40000, 0xcb007105, 51234, 40007, (uint64_t)4321 << 32 | 7);
	CHECK(n == 24 && get_ip(body) == 0x64600003 && get_u16(body + 4) == 8080 && get_u16(body + 6) == 40000 &&
	      get_ip(body + 8) == 0xcb007105 && body[8] == 203 && get_u16(body + 12) == 51234 &&
	      get_u16(body + 14) == 40007 && get_u64(body + 16) == ((uint64_t)4321 << 32 | 7));
	n = body_connect_result(body, 0x1122334455667788ull, 1500);
	CHECK(n == 12 && get_u64(body) == 0x1122334455667788ull && get_u32(body + 8) == 1500);
	n = body_port(body, 443);
	CHECK(n == 4 && get_u16(body) == 443 && get_u16(body + 2) == 0);
	n = body_accepted(body, 8080, 0x7f000001, 5555, 8080);
	CHECK(n == 12 && get_u16(body) == 8080 && get_ip(body + 4) == 0x7f000001 && get_u16(body + 8) == 5555 &&
	      get_u16(body + 10) == 8080);
	CHECK(body_resolve(body, "web") == 3 && body_resolve(body, "") == 0);

	/* replies */
	uint8_t r[64];
	memset(r, 0, sizeof r);
	struct connect_reply cr;
	put_u32(r, 0);
	put_ip(r + 4, 0x7f000001);
	put_u16(r + 8, 9999);
	put_u64(r + 12, 42);
	CHECK(parse_connect_reply(r, 20, &cr) == 0 && cr.err == 0 && cr.real_ip == 0x7f000001 &&
	      cr.real_port == 9999 && cr.conn_id == 42);
	CHECK(parse_connect_reply(r, 19, &cr) == -1);
	put_u32(r, 113); /* EHOSTUNREACH: a short error reply is fine */
	CHECK(parse_connect_reply(r, 4, &cr) == 0 && cr.err == 113);
	CHECK(parse_connect_reply(r, 3, &cr) == -1);
	int32_t err;
	CHECK(parse_errno_reply(r, 4, &err) == 0 && err == 113);

	struct accepted_reply ar;
	put_u32(r, 0);
	put_ip(r + 4, 0x64600009);
	put_u16(r + 8, 4444);
	CHECK(parse_accepted_reply(r, 12, &ar) == 0 && ar.vaddr == 0x64600009 && ar.vport == 4444);
	CHECK(parse_accepted_reply(r, 11, &ar) == -1);

	uint32_t addrs[2];
	int count;
	put_u32(r, 0);
	put_u32(r + 4, 3);
	put_ip(r + 8, 1);
	put_ip(r + 12, 2);
	put_ip(r + 16, 3);
	CHECK(parse_resolve_reply(r, 20, &err, addrs, 2, &count) == 0 && count == 2 && addrs[1] == 2);
	CHECK(parse_resolve_reply(r, 16, &err, addrs, 2, &count) == -1); /* count larger than the body */
	put_u32(r, 2);
	CHECK(parse_resolve_reply(r, 4, &err, addrs, 2, &count) == 0 && err == 2 && count == 0);
	return check_done("test_frame");
}

/* Frames of the shim-to-agent channel (docs/shim-protocol.md): a 12-byte header (u32 len, u16 type,
 * u16 flags, u32 request id; little-endian), then the body. Pure encode/decode functions, unit-tested in
 * native/test/test_frame.c. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#define FRAME_HDR 12
#define FRAME_MAX 4096
#define FRAME_FLAG_FD 0x1

enum shim_msg {
	MSG_HELLO = 1,
	MSG_CONNECT = 2,
	MSG_CONNECT_RESULT = 3,
	MSG_LISTEN = 4,
	MSG_UNLISTEN = 5,
	MSG_ACCEPTED = 6,
	MSG_RESOLVE = 7,
	MSG_CONNECTING = 8, /* no reply */
	MSG_OUTCOME = 9,    /* agent -> shim, unasked (request id 0): u64 conn_id, i32 errno of a CONNECTING's connection */
};

#define CONNECT_FLAG_NONBLOCK 0x1

struct frame_hdr {
	uint32_t len;
	uint16_t type;
	uint16_t flags;
	uint32_t id;
};

/* Little-endian field access. */
void put_u16(uint8_t *p, uint16_t v);
void put_u32(uint8_t *p, uint32_t v);
void put_u64(uint8_t *p, uint64_t v);
uint16_t get_u16(const uint8_t *p);
uint32_t get_u32(const uint8_t *p);
uint64_t get_u64(const uint8_t *p);
/* IPv4 in bodies: 4 bytes in network order; ip here is host order. */
void put_ip(uint8_t *p, uint32_t ip);
uint32_t get_ip(const uint8_t *p);

/* Writes header + body into buf (cap bytes). Returns the frame length, or 0 if it does not fit. */
size_t frame_encode(uint8_t *buf, size_t cap, uint16_t type, uint16_t flags, uint32_t id, const void *body,
		    size_t body_len);
/* Decodes and checks a header: returns 0, or -1 if len is outside [12, 4096]. */
int frame_decode_hdr(const uint8_t *buf, struct frame_hdr *h);

/* Request bodies. Each returns the body length written to out (which has FRAME_MAX - FRAME_HDR bytes). */
size_t body_hello(uint8_t *out, uint32_t pid, const char *name);
size_t body_connect(uint8_t *out, uint32_t vaddr, uint16_t vport, uint16_t local_port, uint32_t flags);
/* CONNECTING (24 bytes): a connect() answered from the route table; punch_port 0 for a direct route. */
size_t body_connecting(uint8_t *out, uint32_t vaddr, uint16_t vport, uint16_t local_port, uint32_t real_ip,
		       uint16_t real_port, uint16_t punch_port, uint64_t conn_id);
size_t body_connect_result(uint8_t *out, uint64_t conn_id, uint32_t wait_ms);
size_t body_port(uint8_t *out, uint16_t port); /* LISTEN, UNLISTEN */
size_t body_accepted(uint8_t *out, uint16_t listen_port, uint32_t peer_ip, uint16_t peer_port, uint16_t local_port);
size_t body_resolve(uint8_t *out, const char *name); /* 0 if the name is too long */

/* Reply bodies. Each returns 0, or -1 if the body is too short (a protocol error). */
struct connect_reply {
	int32_t err;
	uint32_t real_ip;
	uint16_t real_port;
	uint64_t conn_id;
};
int parse_errno_reply(const uint8_t *b, size_t n, int32_t *err);
int parse_connect_reply(const uint8_t *b, size_t n, struct connect_reply *r);
struct accepted_reply {
	int32_t err;
	uint32_t vaddr;
	uint16_t vport;
};
int parse_accepted_reply(const uint8_t *b, size_t n, struct accepted_reply *r);
/* RESOLVE: up to max addresses into addrs (host order); *count gets how many were stored. */
int parse_resolve_reply(const uint8_t *b, size_t n, int32_t *err, uint32_t *addrs, int max, int *count);

#define _GNU_SOURCE
#include "frame.h"

#include <string.h>

void put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
void put_u32(uint8_t *p, uint32_t v) { put_u16(p, (uint16_t)v); put_u16(p + 2, (uint16_t)(v >> 16)); }
void put_u64(uint8_t *p, uint64_t v) { put_u32(p, (uint32_t)v); put_u32(p + 4, (uint32_t)(v >> 32)); }
uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
uint32_t get_u32(const uint8_t *p) { return get_u16(p) | (uint32_t)get_u16(p + 2) << 16; }
uint64_t get_u64(const uint8_t *p) { return get_u32(p) | (uint64_t)get_u32(p + 4) << 32; }
void put_ip(uint8_t *p, uint32_t ip)
{
	p[0] = (uint8_t)(ip >> 24); p[1] = (uint8_t)(ip >> 16); p[2] = (uint8_t)(ip >> 8); p[3] = (uint8_t)ip;
}
uint32_t get_ip(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }

size_t frame_encode(uint8_t *buf, size_t cap, uint16_t type, uint16_t flags, uint32_t id, const void *body,
		    size_t body_len)
{
	size_t len = FRAME_HDR + body_len;
	if (len > FRAME_MAX || len > cap)
		return 0;
	put_u32(buf, (uint32_t)len);
	put_u16(buf + 4, type);
	put_u16(buf + 6, flags);
	put_u32(buf + 8, id);
	if (body_len)
		memcpy(buf + FRAME_HDR, body, body_len);
	return len;
}

int frame_decode_hdr(const uint8_t *buf, struct frame_hdr *h)
{
	h->len = get_u32(buf);
	h->type = get_u16(buf + 4);
	h->flags = get_u16(buf + 6);
	h->id = get_u32(buf + 8);
	return h->len < FRAME_HDR || h->len > FRAME_MAX ? -1 : 0;
}

size_t body_hello(uint8_t *out, uint32_t pid, const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n > 255)
		n = 255;
	put_u32(out, pid);
	memcpy(out + 4, name ? name : "", n);
	return 4 + n;
}

size_t body_connect(uint8_t *out, uint32_t vaddr, uint16_t vport, uint16_t local_port, uint32_t flags)
{
	put_ip(out, vaddr);
	put_u16(out + 4, vport);
	put_u16(out + 6, local_port);
	put_u32(out + 8, flags);
	return 12;
}

size_t body_connecting(uint8_t *out, uint32_t vaddr, uint16_t vport, uint16_t local_port, uint32_t real_ip,
		       uint16_t real_port, uint16_t punch_port, uint64_t conn_id)
{
	put_ip(out, vaddr);
	put_u16(out + 4, vport);
	put_u16(out + 6, local_port);
	put_ip(out + 8, real_ip);
	put_u16(out + 12, real_port);
	put_u16(out + 14, punch_port);
	put_u64(out + 16, conn_id);
	return 24;
}

size_t body_connect_result(uint8_t *out, uint64_t conn_id, uint32_t wait_ms)
{
	put_u64(out, conn_id);
	put_u32(out + 8, wait_ms);
	return 12;
}

size_t body_port(uint8_t *out, uint16_t port)
{
	put_u16(out, port);
	put_u16(out + 2, 0);
	return 4;
}

size_t body_accepted(uint8_t *out, uint16_t listen_port, uint32_t peer_ip, uint16_t peer_port, uint16_t local_port)
{
	put_u16(out, listen_port);
	put_u16(out + 2, 0);
	put_ip(out + 4, peer_ip);
	put_u16(out + 8, peer_port);
	put_u16(out + 10, local_port);
	return 12;
}

size_t body_resolve(uint8_t *out, const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 1024)
		return 0;
	memcpy(out, name, n);
	return n;
}

int parse_errno_reply(const uint8_t *b, size_t n, int32_t *err)
{
	if (n < 4)
		return -1;
	*err = (int32_t)get_u32(b);
	return 0;
}

int parse_connect_reply(const uint8_t *b, size_t n, struct connect_reply *r)
{
	if (n < 4)
		return -1;
	r->err = (int32_t)get_u32(b);
	if (r->err != 0) /* an error reply may stop after errno */
		return 0;
	if (n < 20)
		return -1;
	r->real_ip = get_ip(b + 4);
	r->real_port = get_u16(b + 8);
	r->conn_id = get_u64(b + 12);
	return 0;
}

int parse_accepted_reply(const uint8_t *b, size_t n, struct accepted_reply *r)
{
	if (n < 4)
		return -1;
	r->err = (int32_t)get_u32(b);
	if (r->err != 0)
		return 0;
	if (n < 12)
		return -1;
	r->vaddr = get_ip(b + 4);
	r->vport = get_u16(b + 8);
	return 0;
}

int parse_resolve_reply(const uint8_t *b, size_t n, int32_t *err, uint32_t *addrs, int max, int *count)
{
	*count = 0;
	if (n < 4)
		return -1;
	*err = (int32_t)get_u32(b);
	if (*err != 0)
		return 0;
	if (n < 8)
		return -1;
	uint32_t c = get_u32(b + 4);
	if (c > (n - 8) / 4)
		return -1;
	for (uint32_t i = 0; i < c && (int)i < max; i++)
		addrs[(*count)++] = get_ip(b + 8 + 4 * i);
	return 0;
}

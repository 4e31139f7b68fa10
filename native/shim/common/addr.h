/* Address translation between the program's sockaddrs (AF_INET, or AF_INET6 with v4-mapped addresses) and
 * IPv4 addresses in host order. Pure functions, unit-tested in native/test/test_addr.c. */
#pragma once
#include <netinet/in.h>
#include <stdint.h>
#include <sys/socket.h>

/* Extracts the IPv4 address and port (host order) of an AF_INET sockaddr or of a v4-mapped AF_INET6 one.
 * Returns 0, or -1 for anything else (other families, native IPv6, a length too short). */
int addr_get_v4(const struct sockaddr *sa, socklen_t len, uint32_t *ip, uint16_t *port);

/* Builds a sockaddr of `family` (AF_INET, or AF_INET6 as v4-mapped) for ip:port (host order) into ss.
 * Returns its length, or 0 for an unsupported family. */
socklen_t addr_make(int family, uint32_t ip, uint16_t port, struct sockaddr_storage *ss);

/* Copies a sockaddr to a caller's out-parameters the way the kernel does: at most *len bytes, then sets
 * *len to the full length. No-op if out or len is NULL. */
void addr_copy_out(const struct sockaddr_storage *ss, socklen_t sslen, struct sockaddr *out, socklen_t *len);

/* Parses "a.b.c.d/len" (or a bare address: /32) into net/mask, host order, net masked. Returns 0, or -1
 * if malformed. */
int addr_parse_cidr(const char *s, uint32_t *net, uint32_t *mask);

/* 1 if ip (host order) is inside net/mask. */
static inline int addr_in_net(uint32_t ip, uint32_t net, uint32_t mask)
{
	return (ip & mask) == net;
}

/* The loopback source address a self-connect (to the member's own virtual address) is bound to, so that the
 * accepting side can tell it from native loopback clients and report the member's virtual address. */
#define SHIM_SELF_MARK_IP 0x7f420001u /* 127.66.0.1 */
/* The loopback address the agent's hand-off wake-up connections come from (src/vnet/handoff.ts WAKE_MARK_IP). */
#define SHIM_WAKE_MARK_IP 0x7f420002u /* 127.66.0.2 */
#define SHIM_LOOPBACK_IP 0x7f000001u  /* 127.0.0.1 */

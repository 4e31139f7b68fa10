#define _GNU_SOURCE
#include "addr.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

int addr_get_v4(const struct sockaddr *sa, socklen_t len, uint32_t *ip, uint16_t *port)
{
	if (!sa || len < (socklen_t)sizeof(sa_family_t))
		return -1;
	if (sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		*ip = ntohl(sin->sin_addr.s_addr);
		*port = ntohs(sin->sin_port);
		return 0;
	}
	if (sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		if (!IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			return -1;
		uint32_t v;
		memcpy(&v, &s6->sin6_addr.s6_addr[12], 4);
		*ip = ntohl(v);
		*port = ntohs(s6->sin6_port);
		return 0;
	}
	return -1;
}

socklen_t addr_make(int family, uint32_t ip, uint16_t port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(ip);
		sin->sin_port = htons(port);
		return sizeof *sin;
	}
	if (family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		s6->sin6_addr.s6_addr[10] = 0xff;
		s6->sin6_addr.s6_addr[11] = 0xff;
		uint32_t v = htonl(ip);
		memcpy(&s6->sin6_addr.s6_addr[12], &v, 4);
		return sizeof *s6;
	}
	return 0;
}

void addr_copy_out(const struct sockaddr_storage *ss, socklen_t sslen, struct sockaddr *out, socklen_t *len)
{
	if (!out || !len)
		return;
	socklen_t n = *len < sslen ? *len : sslen;
	memcpy(out, ss, n);
	*len = sslen;
}

int addr_parse_cidr(const char *s, uint32_t *net, uint32_t *mask)
{
	char buf[32];
	const char *slash = strchr(s, '/');
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	if (n == 0 || n >= sizeof buf)
		return -1;
	memcpy(buf, s, n);
	buf[n] = 0;
	struct in_addr a;
	if (inet_pton(AF_INET, buf, &a) != 1)
		return -1;
	long len = 32;
	if (slash) {
		char *end;
		len = strtol(slash + 1, &end, 10);
		if (end == slash + 1 || *end || len < 1 || len > 32)
			return -1;
	}
	*mask = len == 32 ? 0xffffffffu : ~(0xffffffffu >> len);
	*net = ntohl(a.s_addr) & *mask;
	return 0;
}


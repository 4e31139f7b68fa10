/* Address translation: sockaddr <-> IPv4 (AF_INET and v4-mapped AF_INET6), CIDR parsing, out-params. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <string.h>

#include "addr.h"
#include "check.h"

int main(void)
{
	uint32_t ip, net, mask;
	uint16_t port;
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(8080)};
	inet_pton(AF_INET, "100.96.1.2", &sin.sin_addr);
	CHECK(addr_get_v4((struct sockaddr *)&sin, sizeof sin, &ip, &port) == 0);
	CHECK(ip == 0x64600102 && port == 8080);
	CHECK(addr_get_v4((struct sockaddr *)&sin, sizeof sin - 1, &ip, &port) == -1);
	CHECK(addr_get_v4(NULL, 16, &ip, &port) == -1);

	struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_port = htons(443)};
	inet_pton(AF_INET6, "::ffff:100.96.0.9", &s6.sin6_addr);
	CHECK(addr_get_v4((struct sockaddr *)&s6, sizeof s6, &ip, &port) == 0);
	CHECK(ip == 0x64600009 && port == 443);
	inet_pton(AF_INET6, "2001:db8::1", &s6.sin6_addr);
	CHECK(addr_get_v4((struct sockaddr *)&s6, sizeof s6, &ip, &port) == -1);
	struct sockaddr_un_like {
		sa_family_t f;
		char p[20];
	} un = {.f = AF_UNIX};
	CHECK(addr_get_v4((struct sockaddr *)&un, sizeof un, &ip, &port) == -1);

	struct sockaddr_storage ss;
	socklen_t l = addr_make(AF_INET6, 0x64600003, 5000, &ss);
	CHECK(l == sizeof(struct sockaddr_in6));
	char buf[64];
	inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, buf, sizeof buf);
	CHECK(strcmp(buf, "::ffff:100.96.0.3") == 0);
	CHECK(addr_get_v4((struct sockaddr *)&ss, l, &ip, &port) == 0 && ip == 0x64600003 && port == 5000);
	l = addr_make(AF_INET, 0x64600003, 5000, &ss);
	CHECK(l == sizeof(struct sockaddr_in) && ((struct sockaddr_in *)&ss)->sin_port == htons(5000));
	CHECK(addr_make(AF_UNIX, 1, 1, &ss) == 0);

	/* out-params: truncated copy, full length reported */
	struct sockaddr_in6 out;
	socklen_t ol = 8;
	memset(&out, 0xaa, sizeof out);
	l = addr_make(AF_INET6, 0x64600003, 5000, &ss);
	addr_copy_out(&ss, l, (struct sockaddr *)&out, &ol);
	CHECK(ol == sizeof(struct sockaddr_in6));
	CHECK(((unsigned char *)&out)[8] == 0xaa);
	addr_copy_out(&ss, l, NULL, &ol); /* no crash */

	CHECK(addr_parse_cidr("100.96.0.0/16", &net, &mask) == 0 && net == 0x64600000 && mask == 0xffff0000);
	CHECK(addr_parse_cidr("100.96.7.7/16", &net, &mask) == 0 && net == 0x64600000);
	CHECK(addr_parse_cidr("10.0.0.1", &net, &mask) == 0 && mask == 0xffffffff);
	CHECK(addr_parse_cidr("10.0.0.0/33", &net, &mask) == -1);
	CHECK(addr_parse_cidr("10.0.0.0/", &net, &mask) == -1);
	CHECK(addr_parse_cidr("x/8", &net, &mask) == -1);
	addr_parse_cidr("100.96.0.0/16", &net, &mask);
	CHECK(addr_in_net(0x6460ffff, net, mask));
	CHECK(!addr_in_net(0x64610000, net, mask));
	CHECK(!addr_in_net(SHIM_LOOPBACK_IP, net, mask));
	return check_done("test_addr");
}

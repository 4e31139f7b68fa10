/* Who am I: host name copy semantics, uname's nodename, the getifaddrs() list (virtual interface first, loopback
 * kept, host IPv4 hidden, freed whole), SIOCGIFCONF rewriting (size query, full buffer), SIOCGIF* answers. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "check.h"
#include "ident.h"

static uint32_t ip_of(const struct sockaddr *sa)
{
	return ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);
}

static struct sockaddr_in sin4(const char *ip)
{
	struct sockaddr_in s = {.sin_family = AF_INET};
	inet_pton(AF_INET, ip, &s.sin_addr);
	return s;
}

/* Long by design: one check after another on shared buffers, each section commented, reading as the spec. */
int main(void)
{
	struct ident id = {.name = "zk1", .ip = 0x64600005, .mask = 0xffff0000};
	char buf[64];
	CHECK(ident_hostname("zk1", buf, sizeof buf) == 0 && strcmp(buf, "zk1") == 0);
	CHECK(ident_hostname("zk1", buf, 4) == 0 && strcmp(buf, "zk1") == 0);
	errno = 0;
	CHECK(ident_hostname("zk1", buf, 3) == -1 && errno == ENAMETOOLONG && memcmp(buf, "zk1", 3) == 0);

	struct utsname u;
	memset(&u, 'x', sizeof u);
	ident_uname("zk1", &u);
	CHECK(strcmp(u.nodename, "zk1") == 0);

	/* A real list as glibc gives it (here: separate allocations, tied together by a block we free last). */
	struct sockaddr_in lo = sin4("127.0.0.1"), eth = sin4("192.0.2.2");
	struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
	struct ifaddrs real[3] = {
		{.ifa_name = "eth0", .ifa_addr = (struct sockaddr *)&eth},
		{.ifa_name = "lo", .ifa_addr = (struct sockaddr *)&lo},
		{.ifa_name = "eth0", .ifa_addr = (struct sockaddr *)&v6},
	};
	real[0].ifa_next = &real[1];
	real[1].ifa_next = &real[2];
	struct ifaddrs *head = ident_ifaddrs_prepend(&id, real);
	CHECK(head && ident_ifaddrs_is_ours(head));
	CHECK(!ident_ifaddrs_is_ours(&real[1]));
	CHECK(strcmp(head->ifa_name, IDENT_IFNAME) == 0);
	CHECK(ip_of(head->ifa_addr) == 0x64600005);
	CHECK(ip_of(head->ifa_netmask) == 0xffff0000);
	CHECK(ip_of(head->ifa_broadaddr) == 0x6460ffff);
	CHECK(head->ifa_flags & IFF_UP);
	/* then loopback and the IPv6 entry; the host's IPv4 address is not listed */
	CHECK(head->ifa_next == &real[1] && real[1].ifa_next == &real[2] && real[2].ifa_next == NULL);
	CHECK(ident_ifaddrs_release(head) == &real[0]); /* glibc's head, to free the whole block */

	/* SIOCGIFCONF: a size query grows by one entry; a fill puts ours first and drops the host's IPv4. */
	struct ifconf q = {.ifc_len = 2 * (int)sizeof(struct ifreq), .ifc_buf = NULL};
	ident_ifconf(&id, &q, 0);
	CHECK(q.ifc_len == 3 * (int)sizeof(struct ifreq));
	struct ifreq reqs[3];
	memset(reqs, 0, sizeof reqs);
	strcpy(reqs[0].ifr_name, "lo");
	memcpy(&reqs[0].ifr_addr, &lo, sizeof lo);
	strcpy(reqs[1].ifr_name, "eth0");
	memcpy(&reqs[1].ifr_addr, &eth, sizeof eth);
	struct ifconf c = {.ifc_len = 2 * (int)sizeof(struct ifreq), .ifc_req = reqs};
	ident_ifconf(&id, &c, sizeof reqs);
	CHECK(c.ifc_len == 2 * (int)sizeof(struct ifreq));
	CHECK(strcmp(reqs[0].ifr_name, IDENT_IFNAME) == 0 && ip_of(&reqs[0].ifr_addr) == 0x64600005);
	CHECK(strcmp(reqs[1].ifr_name, "lo") == 0);
	/* a buffer with room for one entry only: ours */
	struct ifreq one[1];
	strcpy(one[0].ifr_name, "lo");
	memcpy(&one[0].ifr_addr, &lo, sizeof lo);
	struct ifconf c1 = {.ifc_len = sizeof one, .ifc_req = one};
	ident_ifconf(&id, &c1, sizeof one);
	CHECK(c1.ifc_len == sizeof one && strcmp(one[0].ifr_name, IDENT_IFNAME) == 0);
	/* unknown address: nothing changes */
	struct ident none = {.name = "zk1"};
	struct ifconf c2 = {.ifc_len = 7, .ifc_buf = NULL};
	ident_ifconf(&none, &c2, 0);
	CHECK(c2.ifc_len == 7);

	/* SIOCGIF* on boxer0 */
	struct ifreq r;
	memset(&r, 0, sizeof r);
	strcpy(r.ifr_name, IDENT_IFNAME);
	CHECK(ident_ifreq(&id, SIOCGIFADDR, &r) == 1 && ip_of(&r.ifr_addr) == 0x64600005);
	CHECK(ident_ifreq(&id, SIOCGIFNETMASK, &r) == 1 && ip_of(&r.ifr_netmask) == 0xffff0000);
	CHECK(ident_ifreq(&id, SIOCGIFBRDADDR, &r) == 1 && ip_of(&r.ifr_broadaddr) == 0x6460ffff);
	CHECK(ident_ifreq(&id, SIOCGIFFLAGS, &r) == 1 && (r.ifr_flags & IFF_UP) && !(r.ifr_flags & IFF_LOOPBACK));
	CHECK(ident_ifreq(&id, SIOCGIFMTU, &r) == 1 && r.ifr_mtu == IDENT_MTU);
	CHECK(ident_ifreq(&id, SIOCGIFINDEX, &r) == 1 && r.ifr_ifindex == IDENT_IFINDEX);
	CHECK(ident_ifreq(&id, SIOCGIFHWADDR, &r) == 1 && (unsigned char)r.ifr_hwaddr.sa_data[0] == 0x02);
	memset(&r, 0, sizeof r);
	r.ifr_ifindex = IDENT_IFINDEX;
	CHECK(ident_ifreq(&id, SIOCGIFNAME, &r) == 1 && strcmp(r.ifr_name, IDENT_IFNAME) == 0);
	/* other interfaces and requests: the kernel's */
	strcpy(r.ifr_name, "eth0");
	CHECK(ident_ifreq(&id, SIOCGIFADDR, &r) == 0);
	strcpy(r.ifr_name, IDENT_IFNAME);
	CHECK(ident_ifreq(&id, SIOCSIFADDR, &r) == 0);
	r.ifr_ifindex = 2;
	CHECK(ident_ifreq(&id, SIOCGIFNAME, &r) == 0);
	CHECK(ident_ifreq(&none, SIOCGIFADDR, &r) == 0);
	return check_done("test_ident");
}

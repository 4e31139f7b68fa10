/* The member's identity as the system calls report it: see ident.h. */
#define _GNU_SOURCE
#include "ident.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if_arp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define IDENT_MAGIC 0x626f786572696661ull /* "boxerifa" */
#define IDENT_FLAGS (IFF_UP | IFF_BROADCAST | IFF_RUNNING | IFF_MULTICAST)

/* The virtual interface's getifaddrs() entry and everything it points to, in one block. */
struct ident_block {
	struct ifaddrs ifa;
	uint64_t magic;
	struct ifaddrs *real; /* glibc's list as it came (one block: freed through its head) */
	struct sockaddr_in addr, mask, bcast;
	char name[IFNAMSIZ];
};

int ident_hostname(const char *name, char *out, size_t len)
{
	size_t n = strlen(name) + 1;
	if (n > len) {
		memcpy(out, name, len);
		errno = ENAMETOOLONG;
		return -1;
	}
	memcpy(out, name, n);
	return 0;
}

void ident_uname(const char *name, struct utsname *u)
{
	size_t n = strlen(name);
	if (n >= sizeof u->nodename)
		n = sizeof u->nodename - 1;
	memcpy(u->nodename, name, n);
	u->nodename[n] = 0;
}

static void sin_of(uint32_t ip, struct sockaddr_in *s)
{
	memset(s, 0, sizeof *s);
	s->sin_family = AF_INET;
	s->sin_addr.s_addr = htonl(ip);
}

int ident_hidden(const struct sockaddr *sa)
{
	if (!sa || sa->sa_family != AF_INET)
		return 0;
	uint32_t ip = ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);
	return (ip >> 24) != 127;
}

struct ifaddrs *ident_ifaddrs_prepend(const struct ident *id, struct ifaddrs *rest)
{
	struct ident_block *b = calloc(1, sizeof *b);
	if (!b)
		return NULL;
	b->real = rest;
	struct ifaddrs **link = &rest;
	while (*link) {
		if (ident_hidden((*link)->ifa_addr))
			*link = (*link)->ifa_next;
		else
			link = &(*link)->ifa_next;
	}
	b->magic = IDENT_MAGIC;
	strcpy(b->name, IDENT_IFNAME);
	sin_of(id->ip, &b->addr);
	sin_of(id->mask, &b->mask);
	sin_of(id->ip | ~id->mask, &b->bcast);
	b->ifa.ifa_next = rest;
	b->ifa.ifa_name = b->name;
	b->ifa.ifa_flags = IDENT_FLAGS;
	b->ifa.ifa_addr = (struct sockaddr *)&b->addr;
	b->ifa.ifa_netmask = (struct sockaddr *)&b->mask;
	b->ifa.ifa_broadaddr = (struct sockaddr *)&b->bcast;
	b->ifa.ifa_data = NULL;
	return &b->ifa;
}

int ident_ifaddrs_is_ours(const struct ifaddrs *ifa)
{
	const struct ident_block *b = (const struct ident_block *)ifa;
	/* glibc's entries keep their name at another offset of their block, so the first test reads nothing
	 * beyond the struct ifaddrs of a foreign entry. */
	return ifa && ifa->ifa_name == b->name && b->magic == IDENT_MAGIC;
}

struct ifaddrs *ident_ifaddrs_release(struct ifaddrs *ours)
{
	struct ifaddrs *rest = ((struct ident_block *)ours)->real;
	((struct ident_block *)ours)->magic = 0;
	free(ours);
	return rest;
}

void ident_ifconf(const struct ident *id, struct ifconf *ifc, int cap)
{
	const int one = (int)sizeof(struct ifreq);
	if (!id->ip)
		return;
	if (!ifc->ifc_buf) {
		ifc->ifc_len += one;
		return;
	}
	if (cap < one)
		return;
	int n = 0;
	for (int i = 0; i < ifc->ifc_len / one; i++)
		if (!ident_hidden(&ifc->ifc_req[i].ifr_addr))
			ifc->ifc_req[n++] = ifc->ifc_req[i];
	if (n > cap / one - 1)
		n = cap / one - 1;
	memmove(ifc->ifc_req + 1, ifc->ifc_req, (size_t)n * sizeof(struct ifreq));
	struct ifreq *r = ifc->ifc_req;
	memset(r, 0, sizeof *r);
	strcpy(r->ifr_name, IDENT_IFNAME);
	sin_of(id->ip, (struct sockaddr_in *)&r->ifr_addr);
	ifc->ifc_len = (n + 1) * one;
}

int ident_ifreq(const struct ident *id, unsigned long req, struct ifreq *ifr)
{
	if (!id->ip || !ifr)
		return 0;
	if (req == SIOCGIFNAME) {
		if (ifr->ifr_ifindex != IDENT_IFINDEX)
			return 0;
		memset(ifr->ifr_name, 0, sizeof ifr->ifr_name);
		strcpy(ifr->ifr_name, IDENT_IFNAME);
		return 1;
	}
	if (strncmp(ifr->ifr_name, IDENT_IFNAME, IFNAMSIZ) != 0)
		return 0;
	switch (req) {
	case SIOCGIFADDR:
		sin_of(id->ip, (struct sockaddr_in *)&ifr->ifr_addr);
		return 1;
	case SIOCGIFNETMASK:
		sin_of(id->mask, (struct sockaddr_in *)&ifr->ifr_netmask);
		return 1;
	case SIOCGIFBRDADDR:
		sin_of(id->ip | ~id->mask, (struct sockaddr_in *)&ifr->ifr_broadaddr);
		return 1;
	case SIOCGIFFLAGS:
		ifr->ifr_flags = IDENT_FLAGS;
		return 1;
	case SIOCGIFMTU:
		ifr->ifr_mtu = IDENT_MTU;
		return 1;
	case SIOCGIFINDEX:
		ifr->ifr_ifindex = IDENT_IFINDEX;
		return 1;
	case SIOCGIFHWADDR: {
		/* A locally administered address made of the virtual address: stable, unique in the network. */
		memset(&ifr->ifr_hwaddr, 0, sizeof ifr->ifr_hwaddr);
		ifr->ifr_hwaddr.sa_family = ARPHRD_ETHER;
		unsigned char *mac = (unsigned char *)ifr->ifr_hwaddr.sa_data;
		mac[0] = 0x02;
		mac[1] = 0x42;
		uint32_t be = htonl(id->ip);
		memcpy(mac + 2, &be, 4);
		return 1;
	}
	default:
		return 0;
	}
}

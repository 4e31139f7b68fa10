/* Who the program is on the virtual network: the member's name (gethostname, uname) and an interface `boxer0`
 * carrying its virtual address (getifaddrs, ioctl SIOCGIFCONF / SIOCGIF*). The lists programs search for
 * "their" address hold `boxer0` first, loopback, and no other IPv4 address: the host's own (a function's
 * private address behind a NAT) would be advertised to members that cannot reach it. Pure functions over a
 * `struct ident`, unit-tested in native/test/test_ident.c; native/shim/identity.c wraps them. */
#pragma once
#include <ifaddrs.h>
#include <net/if.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/utsname.h>

#define IDENT_IFNAME "boxer0"
/* Far above the kernel's interface indexes (small integers counted from 1 per namespace). */
#define IDENT_IFINDEX 0x7ffe
#define IDENT_MTU 1500

struct ident {
	char name[64];  /* the member's name ("" : unknown, nothing is changed) */
	uint32_t ip;    /* its virtual address, host order (0: unknown, no interface) */
	uint32_t mask;  /* the virtual network's mask, host order */
};

/* gethostname() semantics: copies name with its NUL into out (len bytes). Returns 0, or -1 with errno
 * ENAMETOOLONG when it does not fit (out then holds the first len bytes, as glibc leaves it). */
int ident_hostname(const char *name, char *out, size_t len);

/* Puts name in u->nodename. */
void ident_uname(const char *name, struct utsname *u);

/* 1 for an address the lists leave out: IPv4 outside 127.0.0.0/8. */
int ident_hidden(const struct sockaddr *sa);

/* A getifaddrs() list with the virtual interface first, then `rest` (the real list, may be NULL) without its
 * hidden entries (relinked in place; the whole of `rest` is still freed through its head). Returns the new head
 * (one malloc()ed block), or NULL when out of memory (`rest` untouched). */
struct ifaddrs *ident_ifaddrs_prepend(const struct ident *id, struct ifaddrs *rest);

/* 1 if ifa is a head made by ident_ifaddrs_prepend. */
int ident_ifaddrs_is_ours(const struct ifaddrs *ifa);

/* Frees a head made by ident_ifaddrs_prepend; returns the real list it was in front of. */
struct ifaddrs *ident_ifaddrs_release(struct ifaddrs *ours);

/* After the kernel answered SIOCGIFCONF into *ifc (ifc_len in: `cap`, the caller's buffer size; out: what the
 * kernel wrote): drops the hidden entries and puts the virtual interface's first, dropping the last entry if the
 * buffer is full, as the kernel drops what does not fit. With ifc_buf NULL (a size query) adds one entry's size. */
void ident_ifconf(const struct ident *id, struct ifconf *ifc, int cap);

/* Answers SIOCGIFADDR, SIOCGIFNETMASK, SIOCGIFBRDADDR, SIOCGIFFLAGS, SIOCGIFMTU, SIOCGIFINDEX, SIOCGIFHWADDR
 * for ifr_name "boxer0", and SIOCGIFNAME for its index. Returns 1 when answered (the ioctl returns 0), 0 when
 * the request is not about the virtual interface (the kernel answers). */
int ident_ifreq(const struct ident *id, unsigned long req, struct ifreq *ifr);

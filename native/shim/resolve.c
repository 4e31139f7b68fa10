/* Name resolution: getaddrinfo(), gethostbyname(), gethostbyname2(AF_INET), gethostbyname_r(), and the reverse
 * lookups getnameinfo(), gethostbyaddr(), gethostbyaddr_r().
 *   - `fn3` and `fn3.boxer` (any case, optional trailing dot) of a member in BOXER_NODES_FILE: its virtual
 *     address, no IPC.
 *   - any other name ending in `.boxer`, or a plain label (no dot) other than `localhost`: RESOLVE to the
 *     agent (service names, members that joined after the file was read), which rotates the order.
 *     A `.boxer` name the agent does not know fails (EAI_NONAME / HOST_NOT_FOUND; EAI_AGAIN / TRY_AGAIN if
 *     the agent cannot be asked); a plain label it does not know goes to the real libc (the host's own name,
 *     /etc/hosts entries).
 *   - everything else (numeric addresses, dotted names): the real libc, untouched.
 *   - reverse: an address of the virtual network is named from the member file (the member's name), so that
 *     `getCanonicalHostName()` and `getfqdn()` give it; one the file does not have is not found (or numeric
 *     for getnameinfo() without NI_NAMEREQD), without asking DNS, which cannot know it. Other addresses: libc.
 * getaddrinfo() results are allocated the way glibc allocates them (one block per entry holding the
 * addrinfo and its sockaddr, a separate ai_canonname), so glibc's own freeaddrinfo() frees them. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/addr.h"
#include "common/config.h"
#include "common/frame.h"
#include "common/ipc.h"
#include "common/libc.h"
#include "common/log.h"
#include "common/nodes.h"

#define RESOLVE_MAX_ADDRS 32

enum { LOOKUP_NOT_OURS = 0, LOOKUP_FOUND = 1, LOOKUP_NONAME = -1, LOOKUP_AGAIN = -2 };

/* Resolves name inside the virtual network. Returns LOOKUP_FOUND with *n >= 1 addresses (host order). */
static int lookup_virtual(const char *name, uint32_t *ips, int max, int *n)
{
	*n = 0;
	if (!name || !name[0] || !shim_enabled())
		return LOOKUP_NOT_OURS;
	struct in6_addr tmp;
	if (inet_pton(AF_INET, name, &tmp) == 1 || inet_pton(AF_INET6, name, &tmp) == 1)
		return LOOKUP_NOT_OURS;
	char norm[NODE_NAME_MAX];
	int dotboxer = nodes_normalize(name, norm);
	if (!norm[0])
		return dotboxer ? LOOKUP_NONAME : LOOKUP_NOT_OURS;
	if (!dotboxer && (strchr(norm, '.') || strcasecmp(norm, "localhost") == 0))
		return LOOKUP_NOT_OURS;
	uint32_t ip;
	if (nodes_lookup_file(shim_cfg.nodes_file, norm, &ip)) {
		ips[0] = ip;
		*n = 1;
		return LOOKUP_FOUND;
	}
	uint8_t body[FRAME_MAX], reply[FRAME_MAX];
	size_t len = body_resolve(body, norm);
	int32_t err;
	int saved = errno;
	if (ipc_request(MSG_RESOLVE, body, len, reply, sizeof reply, &len, NULL) < 0) {
		shim_debug("RESOLVE %s failed: %s", norm, strerror(errno));
		errno = saved;
		return dotboxer ? LOOKUP_AGAIN : LOOKUP_NOT_OURS;
	}
	errno = saved;
	if (parse_resolve_reply(reply, len, &err, ips, max, n) < 0 || err || *n == 0) {
		*n = 0;
		return dotboxer ? LOOKUP_NONAME : LOOKUP_NOT_OURS;
	}
	return LOOKUP_FOUND;
}

static int service_port(const char *service, int socktype, int flags, uint16_t *port)
{
	*port = 0;
	if (!service)
		return 0;
	char *end;
	unsigned long v = strtoul(service, &end, 10);
	if (*service && !*end) {
		if (v > 65535)
			return EAI_SERVICE;
		*port = (uint16_t)v;
		return 0;
	}
	if (flags & AI_NUMERICSERV)
		return EAI_NONAME;
	struct servent se, *res = NULL;
	char buf[1024];
	if (getservbyname_r(service, socktype == SOCK_DGRAM ? "udp" : "tcp", &se, buf, sizeof buf, &res) != 0 ||
	    !res)
		return EAI_SERVICE;
	*port = ntohs((uint16_t)res->s_port);
	return 0;
}

/* One addrinfo entry with its address in the same allocation (freeaddrinfo frees both); NULL when out of memory. */
static struct addrinfo *new_entry(int family, uint32_t ip, uint16_t port, int type, int proto)
{
	struct addrinfo *ai = calloc(1, sizeof *ai + sizeof(struct sockaddr_in6));
	if (!ai)
		return NULL;
	struct sockaddr_storage ss;
	socklen_t sl = addr_make(family, ip, port, &ss);
	ai->ai_addr = (struct sockaddr *)(ai + 1);
	memcpy(ai->ai_addr, &ss, sl);
	ai->ai_addrlen = sl;
	ai->ai_family = family;
	ai->ai_socktype = type;
	ai->ai_protocol = proto;
	return ai;
}

static int build_addrinfo(const char *node, const char *service, const struct addrinfo *hints,
			  const uint32_t *ips, int n, struct addrinfo **res)
{
	int family = hints ? hints->ai_family : AF_UNSPEC;
	int flags = hints ? hints->ai_flags : (AI_V4MAPPED | AI_ADDRCONFIG);
	int want_type = hints ? hints->ai_socktype : 0;
	int want_proto = hints ? hints->ai_protocol : 0;
	int out_family = AF_INET;
	if (family == AF_INET6) {
		if (!(flags & AI_V4MAPPED))
			return EAI_NONAME; /* the name has IPv4 addresses only */
		out_family = AF_INET6;
	} else if (family != AF_UNSPEC && family != AF_INET) {
		return EAI_FAMILY;
	}
	static const struct {
		int type, proto;
	} kinds[] = {{SOCK_STREAM, IPPROTO_TCP}, {SOCK_DGRAM, IPPROTO_UDP}, {SOCK_RAW, 0}};
	struct addrinfo *head = NULL, **tail = &head;
	int err = 0, service_err = 0;
	for (int i = 0; i < n && !err; i++) {
		for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
			if (want_type && want_type != kinds[k].type)
				continue;
			if (!want_type && kinds[k].type == SOCK_RAW && service)
				continue; /* glibc: no raw entries when a service is asked for */
			if (want_proto && kinds[k].proto && want_proto != kinds[k].proto)
				continue;
			uint16_t port;
			int serr = service_port(service, kinds[k].type, flags, &port);
			if (serr) { /* like glibc: skip socket types the service does not exist for */
				service_err = serr;
				continue;
			}
			struct addrinfo *ai = new_entry(out_family, ips[i], port, kinds[k].type, want_proto ? want_proto : kinds[k].proto);
			if (!ai) {
				err = EAI_MEMORY;
				break;
			}
			*tail = ai;
			tail = &ai->ai_next;
		}
	}
	if (!err && !head)
		err = service_err ? service_err : EAI_SOCKTYPE;
	if (!err && (flags & AI_CANONNAME) && !(head->ai_canonname = strdup(node)))
		err = EAI_MEMORY;
	if (err) {
		if (head)
			freeaddrinfo(head);
		return err;
	}
	*res = head;
	return 0;
}

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res)
{
	uint32_t ips[RESOLVE_MAX_ADDRS];
	int n;
	if (hints && (hints->ai_flags & AI_NUMERICHOST))
		return REAL(getaddrinfo)(node, service, hints, res);
	switch (lookup_virtual(node, ips, RESOLVE_MAX_ADDRS, &n)) {
	case LOOKUP_FOUND:
		return build_addrinfo(node, service, hints, ips, n, res);
	case LOOKUP_NONAME:
		return EAI_NONAME;
	case LOOKUP_AGAIN:
		return EAI_AGAIN;
	default:
		return REAL(getaddrinfo)(node, service, hints, res);
	}
}

/* Lays a hostent for ips out in buf. Returns 0, or ERANGE. */
static int fill_hostent(const char *name, const uint32_t *ips, int n, struct hostent *h, char *buf, size_t buflen)
{
	size_t nlen = strlen(name) + 1;
	size_t need = sizeof(char *) * (1 + (size_t)n + 1) + 4 * (size_t)n + nlen + sizeof(char *);
	if (buflen < need)
		return ERANGE;
	uintptr_t p = ((uintptr_t)buf + sizeof(char *) - 1) & ~(uintptr_t)(sizeof(char *) - 1);
	if (p + need > (uintptr_t)buf + buflen)
		return ERANGE;
	char **aliases = (char **)p;
	char **list = aliases + 1;
	char *addrs = (char *)(list + n + 1);
	char *nm = addrs + 4 * n;
	aliases[0] = NULL;
	for (int i = 0; i < n; i++) {
		uint32_t be = htonl(ips[i]);
		memcpy(addrs + 4 * i, &be, 4);
		list[i] = addrs + 4 * i;
	}
	list[n] = NULL;
	memcpy(nm, name, nlen);
	h->h_name = nm;
	h->h_aliases = aliases;
	h->h_addrtype = AF_INET;
	h->h_length = 4;
	h->h_addr_list = list;
	return 0;
}

int gethostbyname_r(const char *name, struct hostent *ret, char *buf, size_t buflen, struct hostent **result,
		    int *h_errnop)
{
	uint32_t ips[RESOLVE_MAX_ADDRS];
	int n;
	int found = lookup_virtual(name, ips, RESOLVE_MAX_ADDRS, &n);
	switch (found) {
	case LOOKUP_FOUND: {
		int rc = fill_hostent(name, ips, n, ret, buf, buflen);
		*result = rc ? NULL : ret;
		if (rc && h_errnop)
			*h_errnop = NETDB_INTERNAL;
		return rc;
	}
	case LOOKUP_NONAME:
	case LOOKUP_AGAIN:
		*result = NULL;
		if (h_errnop)
			*h_errnop = found == LOOKUP_NONAME ? HOST_NOT_FOUND : TRY_AGAIN;
		return 0;
	default:
		return REAL(gethostbyname_r)(name, ret, buf, buflen, result, h_errnop);
	}
}

/* The non-reentrant forms share one static buffer, as glibc's do. */
static struct hostent static_host;
static char static_buf[2048];

/* gethostbyname and gethostbyname2(AF_INET) of a virtual name into the static buffer; 1 with *out (NULL
 * and h_errno set on failure) when the name is the virtual network's, 0 to leave it to the resolver. */
static int static_lookup(const char *name, struct hostent **out)
{
	uint32_t ips[RESOLVE_MAX_ADDRS];
	int n;
	*out = NULL;
	switch (lookup_virtual(name, ips, RESOLVE_MAX_ADDRS, &n)) {
	case LOOKUP_FOUND:
		if (fill_hostent(name, ips, n, &static_host, static_buf, sizeof static_buf) == 0)
			*out = &static_host;
		else
			h_errno = NO_RECOVERY;
		return 1;
	case LOOKUP_NONAME:
		h_errno = HOST_NOT_FOUND;
		return 1;
	case LOOKUP_AGAIN:
		h_errno = TRY_AGAIN;
		return 1;
	default:
		return 0;
	}
}

struct hostent *gethostbyname(const char *name)
{
	struct hostent *h;
	return static_lookup(name, &h) ? h : REAL(gethostbyname)(name);
}

struct hostent *gethostbyname2(const char *name, int af)
{
	struct hostent *h;
	if (af != AF_INET)
		return REAL(gethostbyname2)(name, af);
	return static_lookup(name, &h) ? h : REAL(gethostbyname2)(name, af);
}

/* The member name of a virtual address (host order): 1 with name, 0 not found, -1 not ours (libc answers). */
static int reverse_virtual(uint32_t ip, char *name)
{
	if (!shim_enabled() || !addr_in_net(ip, shim_cfg.net, shim_cfg.mask))
		return -1;
	return nodes_name_file(shim_cfg.nodes_file, ip, name);
}

int getnameinfo(const struct sockaddr *sa, socklen_t salen, char *host, socklen_t hostlen, char *serv,
		socklen_t servlen, int flags)
{
	uint32_t ip;
	uint16_t port;
	char name[NODE_NAME_MAX];
	int found;
	if (!host || !hostlen || (flags & NI_NUMERICHOST) || addr_get_v4(sa, salen, &ip, &port) < 0 ||
	    (found = reverse_virtual(ip, name)) < 0)
		return REAL(getnameinfo)(sa, salen, host, hostlen, serv, servlen, flags);
	if (!found) {
		if (flags & NI_NAMEREQD)
			return EAI_NONAME;
		return REAL(getnameinfo)(sa, salen, host, hostlen, serv, servlen, flags | NI_NUMERICHOST);
	}
	if (strlen(name) >= hostlen)
		return EAI_OVERFLOW;
	if (serv && servlen) {
		int rc = REAL(getnameinfo)(sa, salen, NULL, 0, serv, servlen, flags);
		if (rc)
			return rc;
	}
	strcpy(host, name);
	return 0;
}

/* 1 with the member's name when addr is a virtual address with a member, 0 when virtual without one, -1 not
 * ours. */
static int reverse_hostent_name(const void *addr, socklen_t len, int type, char *name, uint32_t *ip)
{
	if (!addr || type != AF_INET || len != 4)
		return -1;
	uint32_t be;
	memcpy(&be, addr, 4);
	*ip = ntohl(be);
	return reverse_virtual(*ip, name);
}

int gethostbyaddr_r(const void *addr, socklen_t len, int type, struct hostent *ret, char *buf, size_t buflen,
		    struct hostent **result, int *h_errnop)
{
	char name[NODE_NAME_MAX];
	uint32_t ip;
	int found = reverse_hostent_name(addr, len, type, name, &ip);
	if (found < 0)
		return REAL(gethostbyaddr_r)(addr, len, type, ret, buf, buflen, result, h_errnop);
	*result = NULL;
	if (!found) {
		if (h_errnop)
			*h_errnop = HOST_NOT_FOUND;
		return 0;
	}
	int rc = fill_hostent(name, &ip, 1, ret, buf, buflen);
	if (rc) {
		if (h_errnop)
			*h_errnop = NETDB_INTERNAL;
		return rc;
	}
	*result = ret;
	return 0;
}

struct hostent *gethostbyaddr(const void *addr, socklen_t len, int type)
{
	char name[NODE_NAME_MAX];
	uint32_t ip;
	int found = reverse_hostent_name(addr, len, type, name, &ip);
	if (found < 0)
		return REAL(gethostbyaddr)(addr, len, type);
	if (!found || fill_hostent(name, &ip, 1, &static_host, static_buf, sizeof static_buf)) {
		h_errno = found ? NO_RECOVERY : HOST_NOT_FOUND;
		return NULL;
	}
	return &static_host;
}

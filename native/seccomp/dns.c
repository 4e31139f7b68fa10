/* The supervisor's name server (dns.h). */
#define _GNU_SOURCE
#include "dns.h"
#include "dnswire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../shim/common/config.h"
#include "../shim/common/frame.h"
#include "../shim/common/ipc.h"
#include "../shim/common/log.h"
#include "../shim/common/nodes.h"

#define DNS_MAX 1232 /* the largest datagram handled (EDNS's common safe size) */
#define DNS_SEARCH_MAX 6
/* Where each redirected socket wanted to go (its local port -> the name server), for forwarding. */
#define DNS_ROUTES 1024

static int srv = -1;
static uint16_t srv_port;
static char search[DNS_SEARCH_MAX][128];
static int nsearch;
static struct {
	uint16_t port;
	struct sockaddr_storage ns;
	socklen_t nslen;
} routes[DNS_ROUTES];
static pthread_mutex_t routes_lock = PTHREAD_MUTEX_INITIALIZER;
static int forwarding;

static void read_search(void)
{
	FILE *f = fopen("/etc/resolv.conf", "re");
	if (!f)
		return;
	char line[512];
	while (fgets(line, sizeof line, f)) {
		if (strncmp(line, "search", 6) && strncmp(line, "domain", 6))
			continue;
		nsearch = 0;
		char *save, *tok = strtok_r(line + 6, " \t\r\n", &save);
		for (; tok && nsearch < DNS_SEARCH_MAX; tok = strtok_r(NULL, " \t\r\n", &save)) {
			size_t l = strlen(tok);
			if (l && tok[l - 1] == '.')
				tok[--l] = 0;
			if (l && l < sizeof search[0]) {
				for (size_t k = 0; k < l; k++)
					search[nsearch][k] = (char)((tok[k] >= 'A' && tok[k] <= 'Z') ? tok[k] + 32 : tok[k]);
				search[nsearch++][l] = 0;
			}
		}
	}
	fclose(f);
}

int dns_init(void)
{
	read_search();
	srv = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (srv < 0)
		return -1;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof a;
	if (bind(srv, (struct sockaddr *)&a, sizeof a) < 0 || getsockname(srv, (struct sockaddr *)&a, &al) < 0) {
		int err = errno;
		close(srv);
		srv = -1;
		errno = err;
		return -1;
	}
	srv_port = ntohs(a.sin_port);
	return srv;
}

int dns_is_v6_nameserver(const struct sockaddr_storage *ss, socklen_t sl)
{
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
	return ss->ss_family == AF_INET6 && sl >= sizeof *s6 && ntohs(s6->sin6_port) == DNS_PORT;
}

int dns_redirect(struct notif *n, int pfd, const struct sockaddr_storage *ss, socklen_t sl)
{
	if (srv < 0)
		return 0;
	int fd = notif_getfd(n, pfd), type = 0, domain = 0;
	socklen_t tl = sizeof type, dl = sizeof domain;
	if (fd < 0)
		return 0;
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || type != SOCK_DGRAM ||
	    getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &dl) < 0 || (domain != AF_INET && domain != AF_INET6)) {
		close(fd);
		return 0;
	}
	struct sockaddr_storage to;
	socklen_t tol;
	memset(&to, 0, sizeof to);
	if (domain == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&to;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(srv_port);
		inet_pton(AF_INET6, "::ffff:127.0.0.1", &s6->sin6_addr);
		tol = sizeof *s6;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&to;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(srv_port);
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		tol = sizeof *s4;
	}
	int rc = connect(fd, (struct sockaddr *)&to, tol);
	int err = errno;
	if (rc == 0) {
		struct sockaddr_storage me;
		socklen_t ml = sizeof me;
		if (getsockname(fd, (struct sockaddr *)&me, &ml) == 0) {
			uint16_t port = ntohs(((struct sockaddr_in *)&me)->sin_port); /* same offset in sockaddr_in6 */
			pthread_mutex_lock(&routes_lock);
			int slot = port % DNS_ROUTES;
			routes[slot].port = port;
			memcpy(&routes[slot].ns, ss, sl);
			routes[slot].nslen = sl;
			pthread_mutex_unlock(&routes_lock);
		}
	}
	notif_done(n, fd, rc, err);
	return 1;
}

/* The A records of name: members from the member file, and with ask set, service names (RESOLVE to the agent:
 * `*.boxer`, or a plain label other than localhost, as the shim's getaddrinfo asks). 0: not ours. */
static int lookup(const char *name, uint32_t *addrs, int max, int ask)
{
	char cand[256], norm[NODE_NAME_MAX];
	size_t l = strlen(name);
	for (int s = -1; s < nsearch; s++) {
		if (s < 0) {
			snprintf(cand, sizeof cand, "%s", name);
		} else {
			size_t sl = strlen(search[s]);
			if (l <= sl + 1 || name[l - sl - 1] != '.' || strcmp(name + l - sl, search[s]))
				continue;
			snprintf(cand, sizeof cand, "%.*s", (int)(l - sl - 1), name);
		}
		int boxer = nodes_normalize(cand, norm);
		uint32_t ip;
		if (norm[0] && shim_cfg.nodes_file[0] && nodes_lookup_file(shim_cfg.nodes_file, norm, &ip)) {
			addrs[0] = ip;
			return 1;
		}
		if (!ask || !norm[0] || (!boxer && (strchr(norm, '.') || !strcasecmp(norm, "localhost"))))
			continue;
		uint8_t body[FRAME_MAX], reply[FRAME_MAX];
		size_t n = body_resolve(body, norm), rn;
		int32_t err;
		int count = 0;
		if (n && ipc_request(MSG_RESOLVE, body, n, reply, sizeof reply, &rn, NULL) == 0 &&
		    parse_resolve_reply(reply, rn, &err, addrs, max, &count) == 0 && !err && count > 0)
			return count;
	}
	return 0;
}

/* A query not answered from the member file: service names, then the program's own name server. */
struct slow {
	uint8_t q[DNS_MAX];
	size_t n, qlen;
	uint16_t qtype;
	char name[256];
	struct sockaddr_storage client, ns;
	socklen_t clen, nslen; /* nslen 0: the program's name server is not known */
};

/* Answers count addresses (or rcode) to the client of s. */
static void reply(const struct slow *s, const uint32_t *addrs, int count, int rcode)
{
	uint8_t out[DNS_MAX];
	size_t len = dns_build_answer(s->q, s->qlen, addrs, count, rcode, out, sizeof out);
	if (len)
		sendto(srv, out, len, 0, (const struct sockaddr *)&s->client, s->clen);
}

/* RESOLVE, else forward to the program's name server and relay its answer (SERVFAIL when it does not answer in
 * time), on a thread of its own: neither may hold up the trapped calls. Frees arg. */
static void *resolve_slow(void *arg)
{
	struct slow *s = arg;
	uint32_t addrs[32];
	int count = lookup(s->name, addrs, 32, 1);
	if (count > 0) {
		reply(s, addrs, s->qtype == 1 ? count : 0, 0);
	} else if (!s->nslen) {
		reply(s, NULL, 0, 2);
	} else {
		uint8_t a[DNS_MAX];
		ssize_t r = -1;
		int fd = socket(s->ns.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&s->ns, s->nslen) == 0 && send(fd, s->q, s->n, 0) == (ssize_t)s->n) {
			struct pollfd p = {.fd = fd, .events = POLLIN};
			if (poll(&p, 1, DNS_FORWARD_TIMEOUT_MS) == 1)
				r = recv(fd, a, sizeof a, 0);
		}
		if (fd >= 0)
			close(fd);
		if (r >= 12 && a[0] == s->q[0] && a[1] == s->q[1])
			sendto(srv, a, (size_t)r, 0, (struct sockaddr *)&s->client, s->clen);
		else
			reply(s, NULL, 0, 2);
	}
	__atomic_sub_fetch(&forwarding, 1, __ATOMIC_RELAXED);
	free(s);
	return NULL;
}

static void answer_one(const uint8_t *q, size_t n, const struct sockaddr_storage *from, socklen_t flen)
{
	struct slow *s = calloc(1, sizeof *s);
	if (!s || dns_parse_query(q, n, s->name, sizeof s->name, &s->qtype, &s->qlen) < 0) {
		free(s);
		return;
	}
	memcpy(s->q, q, n);
	s->n = n;
	s->client = *from;
	s->clen = flen;
	uint32_t addrs[1];
	if (lookup(s->name, addrs, 1, 0)) { /* a member: at once */
		reply(s, addrs, s->qtype == 1, 0);
		free(s);
		return;
	}
	uint16_t port = ntohs(((const struct sockaddr_in *)from)->sin_port);
	pthread_mutex_lock(&routes_lock);
	int slot = port % DNS_ROUTES;
	if (routes[slot].port == port) {
		s->ns = routes[slot].ns;
		s->nslen = routes[slot].nslen;
	}
	pthread_mutex_unlock(&routes_lock);
	if (__atomic_add_fetch(&forwarding, 1, __ATOMIC_RELAXED) <= DNS_FORWARD_MAX && notify_spawn(resolve_slow, s) == 0)
		return;
	__atomic_sub_fetch(&forwarding, 1, __ATOMIC_RELAXED);
	reply(s, NULL, 0, 2);
	free(s);
}

void dns_serve(void)
{
	uint8_t q[DNS_MAX];
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage from;
		socklen_t flen = sizeof from;
		ssize_t r = recvfrom(srv, q, sizeof q, 0, (struct sockaddr *)&from, &flen);
		if (r < 0)
			return;
		answer_one(q, (size_t)r, &from, flen);
	}
}

#define _GNU_SOURCE
#include "routes.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"
#include "libc.h"

/* ---- parsing (pure) ---- */

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

/* A decimal integer in [min, max] (optional leading '-'), the whole token. */
static int parse_int(const char *s, size_t n, long min, long max, long *out)
{
	size_t i = 0;
	int neg = 0;
	if (n > 0 && s[0] == '-') {
		neg = 1;
		i = 1;
	}
	if (i == n || n - i > 9)
		return -1;
	long v = 0;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (neg)
		v = -v;
	if (v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse_ip(const char *s, size_t n, uint32_t *ip)
{
	char buf[16];
	struct in_addr a;
	if (n >= sizeof buf)
		return -1;
	memcpy(buf, s, n);
	buf[n] = 0;
	if (inet_pton(AF_INET, buf, &a) != 1)
		return -1;
	*ip = ntohl(a.s_addr);
	return 0;
}

static int tok_is(const char *s, size_t n, const char *word)
{
	return strlen(word) == n && memcmp(s, word, n) == 0;
}

/* Kinds of parsed lines that are not routes (parse_line): a `from` line, a `svc` line. */
#define LINE_FROM 100
#define LINE_SVC 101

/* Returns 0 (a route in *r), LINE_FROM (a `from` line: in *r, ip, xor_, offset, lo, hi), LINE_SVC (a `svc`
 * line: in *r, vaddr the service's address, ip the member's, 0 for none), or -1. */
static int parse_line(const char *s, size_t len, struct route *r)
{
	const char *tok[9];
	size_t tl[9];
	int nt = 0;
	size_t i = 0;
	while (i < len) {
		while (i < len && is_space(s[i]))
			i++;
		if (i == len)
			break;
		if (nt == 9)
			return -1; /* too many fields */
		tok[nt] = s + i;
		while (i < len && !is_space(s[i]))
			i++;
		tl[nt] = (size_t)(s + i - tok[nt]);
		nt++;
	}
	if (nt != 8 || tok[0][0] == '#')
		return -1;
	memset(r, 0, sizeof *r);
	if (parse_ip(tok[1], tl[1], &r->vaddr) < 0)
		return -1;
	if (tok_is(tok[2], tl[2], "direct"))
		r->kind = ROUTE_DIRECT;
	else if (tok_is(tok[2], tl[2], "direct-quiet")) {
		r->kind = ROUTE_DIRECT;
		r->quiet = 1;
	} else if (tok_is(tok[2], tl[2], "punch"))
		r->kind = ROUTE_PUNCH;
	else if (tok_is(tok[2], tl[2], "agent"))
		r->kind = ROUTE_AGENT;
	else if (tok_is(tok[2], tl[2], "none"))
		r->kind = ROUTE_NONE;
	else if (tok_is(tok[2], tl[2], "self"))
		r->kind = ROUTE_SELF;
	else if (tok_is(tok[2], tl[2], "from"))
		r->kind = LINE_FROM;
	else if (tok_is(tok[2], tl[2], "svc"))
		r->kind = LINE_SVC;
	else
		return -1;
	long x, off, lo, hi;
	if (parse_int(tok[4], tl[4], 0, 65535, &x) < 0 || parse_int(tok[5], tl[5], -65535, 65535, &off) < 0 ||
	    parse_int(tok[6], tl[6], 0, 65535, &lo) < 0 || parse_int(tok[7], tl[7], 0, 65535, &hi) < 0)
		return -1;
	if (r->kind == LINE_SVC)
		return parse_ip(tok[3], tl[3], &r->ip) < 0 ? -1 : LINE_SVC;
	if (r->kind == LINE_FROM) {
		if (parse_ip(tok[3], tl[3], &r->ip) < 0 || r->ip == 0 || lo < 1 || hi < lo)
			return -1;
		r->xor_ = (uint16_t)x;
		r->offset = (int32_t)off;
		r->lo = (uint16_t)lo;
		r->hi = (uint16_t)hi;
		return LINE_FROM;
	}
	if (r->kind == ROUTE_DIRECT || r->kind == ROUTE_PUNCH) {
		if (parse_ip(tok[3], tl[3], &r->ip) < 0 || r->ip == 0)
			return -1;
	} else if (parse_ip(tok[3], tl[3], &r->ip) < 0) {
		r->ip = 0; /* informational here (routes_find_peer): a line is not dropped for it */
	}
	if (r->kind == ROUTE_PUNCH) {
		if (lo < 1 || hi < lo)
			return -1;
		r->xor_ = (uint16_t)x;
		r->offset = (int32_t)off;
		r->lo = (uint16_t)lo;
		r->hi = (uint16_t)hi;
	}
	return 0;
}

static int cmp_route(const void *a, const void *b)
{
	const struct route *x = a, *y = b;
	if (x->vaddr != y->vaddr)
		return x->vaddr < y->vaddr ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int cmp_svc(const void *a, const void *b)
{
	const struct svc_line *x = a, *y = b;
	if (x->vip != y->vip)
		return x->vip < y->vip ? -1 : 1;
	return x->member < y->member ? -1 : x->member > y->member;
}

int routes_parse(const char *text, size_t len, struct route_table *t)
{
	t->n = 0;
	t->ns = 0;
	t->nsvc = 0;
	size_t i = 0;
	uint32_t seq = 0;
	while (i < len) {
		const char *nl = memchr(text + i, '\n', len - i);
		size_t ll = nl ? (size_t)(nl - (text + i)) : len - i;
		struct route r;
		int k = parse_line(text + i, ll, &r);
		if (k == 0 && t->n < ROUTES_MAX) {
			r.seq = seq++;
			t->r[t->n++] = r;
		} else if (k == LINE_FROM && t->ns < SOURCES_MAX) {
			t->s[t->ns++] = (struct source){ .ip = r.ip, .offset = r.offset, .xor_ = r.xor_, .lo = r.lo, .hi = r.hi };
		} else if (k == LINE_SVC && t->nsvc < SERVICE_LINES_MAX) {
			t->svc[t->nsvc++] = (struct svc_line){ .vip = r.vaddr, .member = r.ip };
		}
		i += ll + 1;
	}
	qsort(t->r, (size_t)t->n, sizeof t->r[0], cmp_route);
	qsort(t->svc, (size_t)t->nsvc, sizeof t->svc[0], cmp_svc);
	/* One entry per vaddr: the last line wins. */
	int w = 0;
	for (int k = 0; k < t->n; k++) {
		if (w > 0 && t->r[w - 1].vaddr == t->r[k].vaddr)
			w--;
		t->r[w++] = t->r[k];
	}
	t->n = w;
	return w;
}

const struct route *routes_find(const struct route_table *t, uint32_t vaddr)
{
	int lo = 0, hi = t->n - 1;
	while (lo <= hi) {
		int mid = lo + (hi - lo) / 2;
		uint32_t v = t->r[mid].vaddr;
		if (v == vaddr)
			return &t->r[mid];
		if (v < vaddr)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return NULL;
}

const struct route *routes_find_peer(const struct route_table *t, uint32_t ip)
{
	const struct route *found = NULL;
	if (ip == 0)
		return NULL;
	for (int i = 0; i < t->n; i++) {
		if (t->r[i].ip != ip)
			continue;
		if (found)
			return NULL; /* several members at that address: only the agent can tell them apart */
		found = &t->r[i];
	}
	return found && found->kind == ROUTE_DIRECT ? found : NULL;
}

int source_matches(const struct source *s, uint32_t ip, uint16_t port)
{
	if (s->ip != ip)
		return 0;
	uint32_t p = ((uint32_t)((int32_t)port - s->offset) & 0xffffu) ^ s->xor_;
	return p >= s->lo && p <= s->hi;
}

enum peer_class routes_classify_peer(const struct route_table *t, uint32_t ip, uint16_t port, struct route *named)
{
	if ((ip >> 24) != 127) {
		const struct route *r = routes_find_peer(t, ip);
		if (r) {
			*named = *r;
			return PEER_NAMED;
		}
	}
	for (int i = 0; i < t->ns; i++)
		if (source_matches(&t->s[i], ip, port))
			return PEER_ASK;
	return PEER_OUTSIDE;
}

/* ---- the file cache ---- */

static pthread_mutex_t routes_lock = PTHREAD_MUTEX_INITIALIZER;
static struct route_table tables[2];
static struct route_table *cur; /* NULL until a table was read */
static struct stat cur_st;      /* the file the current table came from */
static char cur_path[512];

static int same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* Reads the file into the spare table and makes it current; on any failure the current table stays. */
static void reload(const char *path)
{
	struct stat st;
	size_t len;
	char *buf = file_read_whole(path, ROUTES_FILE_MAX, &len, &st);
	if (!buf)
		return;
	struct route_table *spare = cur == &tables[0] ? &tables[1] : &tables[0];
	routes_parse(buf, len, spare);
	cur = spare;
	cur_st = st;
	strncpy(cur_path, path, sizeof cur_path - 1);
	free(buf);
}

/* The table of the file at path, re-read when the file changed (NULL: none could ever be read). Called with
 * routes_lock held. */
static const struct route_table *current(const char *path)
{
	struct stat st;
	if (stat(path, &st) == 0 && (!cur || !same_file(&st, &cur_st) || strcmp(path, cur_path) != 0))
		reload(path);
	return cur;
}

/* Runs find(table, key) on the current table of the file at path (re-read when it changed); copies the route
 * found into *out. Returns 1, or 0. Keeps errno. */
static int lookup_file(const char *path, const struct route *(*find)(const struct route_table *, uint32_t),
		       uint32_t key, struct route *out)
{
	if (!path || !path[0])
		return 0;
	int saved = errno, found = 0;
	pthread_mutex_lock(&routes_lock);
	const struct route_table *t = current(path);
	const struct route *r = t ? find(t, key) : NULL;
	if (r) {
		*out = *r;
		found = 1;
	}
	pthread_mutex_unlock(&routes_lock);
	errno = saved;
	return found;
}

int routes_lookup_file(const char *path, uint32_t vaddr, struct route *out)
{
	return lookup_file(path, routes_find, vaddr, out);
}

int routes_peer_file(const char *path, uint32_t ip, struct route *out)
{
	return lookup_file(path, routes_find_peer, ip, out);
}

enum peer_class routes_classify_file(const char *path, uint32_t ip, uint16_t port, struct route *named)
{
	if (!path || !path[0])
		return PEER_ASK;
	int saved = errno;
	enum peer_class c = PEER_ASK;
	pthread_mutex_lock(&routes_lock);
	const struct route_table *t = current(path);
	if (t)
		c = routes_classify_peer(t, ip, port, named);
	pthread_mutex_unlock(&routes_lock);
	errno = saved;
	return c;
}

int routes_service_file(const char *path, uint32_t vip, uint32_t *member)
{
	static uint32_t next; /* the round robin's position, shared by the process's threads */
	if (!path || !path[0])
		return 0;
	uint32_t c = __atomic_fetch_add(&next, 1, __ATOMIC_RELAXED);
	if (c == 0) { /* a random start, so that many processes (nginx workers) do not all begin at one member */
		c = route_rand(NULL);
		__atomic_store_n(&next, c + 1, __ATOMIC_RELAXED);
	}
	int saved = errno, found = 0;
	pthread_mutex_lock(&routes_lock);
	const struct route_table *t = current(path);
	if (t)
		found = service_pick(t, vip, c, member);
	pthread_mutex_unlock(&routes_lock);
	errno = saved;
	return found;
}

void routes_atfork_prepare(void) { pthread_mutex_lock(&routes_lock); }
void routes_atfork_parent(void) { pthread_mutex_unlock(&routes_lock); }
void routes_atfork_child(void)
{
	pthread_mutex_init(&routes_lock, NULL);
	route_rand_atfork_child();
}

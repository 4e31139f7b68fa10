/* The route table: parsing (kinds, bounds, skipped lines, the later line wins), lookup, the uniform draw and
 * the punch port picking, re-reading the file when it changes and keeping the last good table. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "routes.h"

static struct route_table t;

/* A deterministic source: returns the values of seq in turn (then repeats the last). */
struct seq {
	const uint32_t *v;
	int n, i;
};
static uint32_t seq_next(void *ctx)
{
	struct seq *s = ctx;
	uint32_t x = s->v[s->i < s->n ? s->i : s->n - 1];
	s->i++;
	return x;
}

static uint64_t lcg = 12345;
static uint32_t lcg_next(void *ctx)
{
	(void)ctx;
	lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(lcg >> 32);
}

static void write_file(const char *path, const char *text)
{
	char tmp[600];
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	fputs(text, f);
	fclose(f);
	rename(tmp, path); /* as the agent writes it: a new inode */
}

/* Parsing: kinds, bounds, skipped lines, the later line wins; direct-quiet. */
static void test_parse(void)
{
	const char *text = "# routes\n"
			   "a 100.96.0.2 direct 203.0.113.5 0 0 0 0\n"
			   "\n"
			   "  b\t100.96.0.3 punch 198.51.100.7 5 -100 40000 40099  \r\n"
			   "c 100.96.0.4 agent 0.0.0.0 0 0 0 0\n"
			   "d 100.96.0.5 none 0.0.0.0 0 0 0 0\n"
			   "e 100.96.0.6 self 0.0.0.0 0 0 0 0\n"
			   "f 100.96.0.7 bogus 1.2.3.4 0 0 0 0\n"       /* unknown kind */
			   "g 100.96.0.8 direct 1.2.3.4 0 0 0\n"        /* 7 fields */
			   "h 100.96.0.9 direct 1.2.3.4 0 0 0 0 0\n"    /* 9 fields */
			   "i 100.96.0.10 punch 1.2.3.4 0 0 500 400\n"  /* hi < lo */
			   "j 100.96.0.11 punch 1.2.3.4 0 0 0 10\n"     /* lo 0 */
			   "k 100.96.0.12 punch 1.2.3.4 70000 0 1 10\n" /* xor > 65535 */
			   "l 100.96.0.13 punch 1.2.3.4 0 0 1 1x\n"     /* not a number */
			   "m 100.96.0.14 direct 0.0.0.0 0 0 0 0\n"     /* direct without an address */
			   "n 999.96.0.15 direct 1.2.3.4 0 0 0 0\n"     /* bad vaddr */
			   "o 100.96.0.2 direct 203.0.113.9 0 0 0 0\n"  /* again: the later line wins */
			   "p 100.96.0.16 punch 1.2.3.4 0 -65535 1 1"; /* no final newline */
	CHECK(routes_parse(text, strlen(text), &t) == 6);
	const struct route *r = routes_find(&t, 0x64600002);
	CHECK(r && r->kind == ROUTE_DIRECT && r->ip == 0xcb007109); /* 203.0.113.9 */
	r = routes_find(&t, 0x64600003);
	CHECK(r && r->kind == ROUTE_PUNCH && r->ip == 0xc6336407 && r->xor_ == 5 && r->offset == -100 &&
	      r->lo == 40000 && r->hi == 40099);
	CHECK((r = routes_find(&t, 0x64600004)) && r->kind == ROUTE_AGENT);
	CHECK((r = routes_find(&t, 0x64600005)) && r->kind == ROUTE_NONE);
	CHECK((r = routes_find(&t, 0x64600006)) && r->kind == ROUTE_SELF);
	CHECK((r = routes_find(&t, 0x64600010)) && r->kind == ROUTE_PUNCH && r->offset == -65535);
	for (uint32_t a = 0x64600007; a <= 0x6460000f; a++)
		CHECK(routes_find(&t, a) == NULL);
	CHECK(routes_find(&t, 0) == NULL && routes_find(&t, 0xffffffff) == NULL);
	CHECK(routes_parse("", 0, &t) == 0 && routes_find(&t, 0x64600002) == NULL);
	/* direct-quiet: a direct route the agent needs no word of. */
	const char *quiet = "a 100.96.0.2 direct-quiet 203.0.113.9 0 0 0 0\nb 100.96.0.3 direct 203.0.113.8 0 0 0 0\n";
	CHECK(routes_parse(quiet, strlen(quiet), &t) == 2);
	CHECK((r = routes_find(&t, 0x64600002)) && r->kind == ROUTE_DIRECT && r->quiet == 1 && r->ip == 0xcb007109);
	CHECK((r = routes_find(&t, 0x64600003)) && r->kind == ROUTE_DIRECT && r->quiet == 0);
	quiet = "a 100.96.0.2 direct-quiet 0.0.0.0 0 0 0 0\n"; /* still needs an address */
	CHECK(routes_parse(quiet, strlen(quiet), &t) == 0);
}

static void test_find_peer(void)
{
	const struct route *r;
	/* Naming an accepted connection by its source address: one direct line alone at that address. */
	const char *peers = "a 100.96.0.2 direct 203.0.113.9 0 0 0 0\n"   /* a VM alone at its address */
			    "b 100.96.0.3 direct 10.0.0.5 0 0 0 0\n"      /* a LAN member, private address */
			    "c 100.96.0.4 agent 10.0.0.5 0 0 0 0\n"       /* ... and another member there */
			    "d 100.96.0.5 punch 198.51.100.7 0 0 1 9\n"   /* behind a NAT */
			    "e 100.96.0.6 direct 192.0.2.1 0 0 0 0\n"     /* two agents on one VM */
			    "f 100.96.0.7 direct 192.0.2.1 0 0 0 0\n"
			    "g 100.96.0.8 self 203.0.113.10 0 0 0 0\n"    /* this member */
			    "h 100.96.0.9 direct 203.0.113.10 0 0 0 0\n"; /* ... and another at our address */
	CHECK(routes_parse(peers, strlen(peers), &t) == 8);
	CHECK((r = routes_find_peer(&t, 0xcb007109)) && r->vaddr == 0x64600002);
	CHECK(routes_find_peer(&t, 0x0a000005) == NULL);  /* ambiguous */
	CHECK(routes_find_peer(&t, 0xc6336407) == NULL);  /* not direct: the NAT's address */
	CHECK(routes_find_peer(&t, 0xc0000201) == NULL);  /* two members */
	CHECK(routes_find_peer(&t, 0xcb00710a) == NULL);  /* shares our own address */
	CHECK(routes_find_peer(&t, 0x01020304) == NULL);  /* nobody */
	CHECK(routes_find_peer(&t, 0) == NULL);
	/* len bounds the text: the second line is not seen */
	const char *two = "a 100.96.0.2 none 0 0 0 0 0\nb 100.96.0.3 none 0 0 0 0 0\n";
	CHECK(routes_parse(two, 28, &t) == 1 && routes_find(&t, 0x64600003) == NULL);
}

static void test_bounded(void)
{
	/* The table is bounded: lines beyond ROUTES_MAX are skipped. */
	size_t cap = (size_t)(ROUTES_MAX + 10) * 48;
	char *big = malloc(cap), *p = big;
	for (int i = 0; i < ROUTES_MAX + 10; i++)
		p += sprintf(p, "%d 100.%d.%d.%d direct 10.0.0.1 0 0 0 0\n", i, 96 + (i >> 16), (i >> 8) & 255, i & 255);
	CHECK(routes_parse(big, (size_t)(p - big), &t) == ROUTES_MAX);
	CHECK(routes_find(&t, 0x64600000 + ROUTES_MAX - 1) != NULL && routes_find(&t, 0x64600000 + ROUTES_MAX) == NULL);
	free(big);
}

static void test_uniform(void)
{
	/* route_uniform: the edges of [0, range), and unbiased rejection of the low part. */
	uint32_t v1[] = {0x01000000, 0xffffffff};
	struct seq s = {v1, 2, 0};
	CHECK(route_uniform(seq_next, &s, 100) == 0);
	CHECK(route_uniform(seq_next, &s, 100) == 99);
	CHECK(route_uniform(seq_next, &s, 1) == 0);
	uint32_t v2[] = {1, 0x80000000}; /* 1 * 3 = 3, low 3 < (2^32 mod 3 = 1)? no: accepted */
	s = (struct seq){v2, 2, 0};
	CHECK(route_uniform(seq_next, &s, 3) == 0 && s.i == 1);
	uint32_t v3[] = {0, 0x80000000}; /* low 0 < 2^32 mod 3 = 1: rejected, draws again */
	s = (struct seq){v3, 2, 0};
	CHECK(route_uniform(seq_next, &s, 3) == 1 && s.i == 2);
}

static void test_pick(void)
{
	/* route_pick: M in [lo, hi], port = (M ^ xor) + offset; every M of a small range drawn. */
	struct route pr = {.kind = ROUTE_PUNCH, .ip = 1, .xor_ = 0x55, .offset = 7, .lo = 40000, .hi = 40009};
	int seen[10] = {0}, bad = 0;
	for (int i = 0; i < 2000; i++) {
		uint16_t m, port;
		if (route_pick(&pr, lcg_next, NULL, &m, &port) < 0 || m < 40000 || m > 40009 ||
		    port != (uint16_t)((m ^ 0x55) + 7))
			bad++;
		else
			seen[m - 40000]++;
	}
	CHECK(bad == 0);
	for (int i = 0; i < 10; i++)
		CHECK(seen[i] > 100 && seen[i] < 300); /* ~200 each */
	/* ports <= 0 or > 65535 are drawn again */
	struct route low = {.kind = ROUTE_PUNCH, .ip = 1, .offset = -10, .lo = 1, .hi = 20}; /* M <= 10 invalid */
	for (int i = 0; i < 200; i++) {
		uint16_t m, port;
		CHECK(route_pick(&low, lcg_next, NULL, &m, &port) == 0 && m > 10 && port == m - 10);
	}
	struct route high = {.kind = ROUTE_PUNCH, .ip = 1, .xor_ = 0xffff, .offset = 100, .lo = 1, .hi = 200};
	for (int i = 0; i < 200; i++) { /* M ^ 0xffff = 65535 - M: + 100 stays <= 65535 only for M >= 100 */
		uint16_t m, port;
		CHECK(route_pick(&high, lcg_next, NULL, &m, &port) == 0 && m >= 100 && port == 65535 - m + 100);
	}
	struct route never = {.kind = ROUTE_PUNCH, .ip = 1, .offset = 65535, .lo = 1, .hi = 10};
	uint16_t m, port;
	CHECK(route_pick(&never, lcg_next, NULL, &m, &port) == -1); /* bounded: gives up */
	struct route direct = {.kind = ROUTE_DIRECT, .ip = 1};
	CHECK(route_pick(&direct, lcg_next, NULL, &m, &port) == -1);
	/* the shim's own source covers a range too */
	int hit[4] = {0};
	struct route four = {.kind = ROUTE_PUNCH, .ip = 1, .lo = 1000, .hi = 1003};
	for (int i = 0; i < 400; i++)
		if (route_pick(&four, route_rand, NULL, &m, &port) == 0 && m >= 1000 && m <= 1003 && port == m)
			hit[m - 1000]++;
	CHECK(hit[0] && hit[1] && hit[2] && hit[3] && hit[0] + hit[1] + hit[2] + hit[3] == 400);
}

static void test_fork(void)
{
	/* A fork child (its atfork hook run) does not draw the parent's sequence. */
	int pfd[2];
	CHECK(pipe(pfd) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		routes_atfork_child();
		uint32_t v[4] = {route_rand(NULL), route_rand(NULL), route_rand(NULL), route_rand(NULL)};
		_exit(write(pfd[1], v, sizeof v) == sizeof v ? 0 : 1);
	}
	uint32_t mine[4] = {route_rand(NULL), route_rand(NULL), route_rand(NULL), route_rand(NULL)}, child[4];
	CHECK(read(pfd[0], child, sizeof child) == sizeof child);
	CHECK(memcmp(mine, child, sizeof mine) != 0);
	close(pfd[0]);
	close(pfd[1]);
	waitpid(pid, NULL, 0);
}

static void test_file(void)
{
	/* The file: read, re-read after a change (rename: a new inode), last good table kept. */
	char dir[] = "/tmp/boxer-routes-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char path[512];
	snprintf(path, sizeof path, "%s/routes", dir);
	struct route out;
	CHECK(routes_lookup_file(path, 0x64600002, &out) == 0); /* no file yet */
	CHECK(routes_lookup_file("", 0x64600002, &out) == 0);
	write_file(path, "a 100.96.0.2 none 0.0.0.0 0 0 0 0\n");
	CHECK(routes_lookup_file(path, 0x64600002, &out) == 1 && out.kind == ROUTE_NONE);
	CHECK(routes_lookup_file(path, 0x64600003, &out) == 0);
	write_file(path, "a 100.96.0.2 direct 127.0.0.1 0 0 0 0\n"); /* same size: the inode tells */
	CHECK(routes_lookup_file(path, 0x64600002, &out) == 1 && out.kind == ROUTE_DIRECT && out.ip == 0x7f000001);
	CHECK(routes_peer_file(path, 0x7f000001, &out) == 1 && out.vaddr == 0x64600002);
	FILE *f = fopen(path, "a"); /* in place: size and mtime change */
	fputs("b 100.96.0.3 punch 127.0.0.1 0 0 5000 5001\n", f);
	fclose(f);
	CHECK(routes_lookup_file(path, 0x64600003, &out) == 1 && out.kind == ROUTE_PUNCH && out.lo == 5000);
	CHECK(routes_peer_file(path, 0x7f000001, &out) == 0); /* two members at 127.0.0.1 */
	unlink(path); /* a failed read keeps the last good table */
	CHECK(routes_lookup_file(path, 0x64600003, &out) == 1 && out.kind == ROUTE_PUNCH);
	mkdir(path, 0700); /* a directory at the path: open works, read fails */
	CHECK(routes_lookup_file(path, 0x64600002, &out) == 1 && out.kind == ROUTE_DIRECT);
	rmdir(path);
	rmdir(dir);
}

static void test_from(void)
{
	/* `from` lines (src/vnet/sources.ts) and routes_classify_peer. */
	{
		static struct route_table ft;
		const char *ftext = "1 100.96.0.2 direct 198.18.0.3 0 0 0 0\n"
				    "2 100.96.0.3 agent 198.18.1.2 0 0 0 0\n"
				    "3 100.96.0.4 agent 198.18.1.2 0 0 0 0\n"
				    "4 100.96.0.5 punch 198.18.1.4 32768 0 20000 20063\n"
				    "5 100.96.0.6 agent 198.18.1.3 0 0 0 0\n"
				    "2 100.96.0.3 from 198.18.1.2 0 0 32768 46883\n"    /* preserving, shared: fsa's block */
				    "3 100.96.0.4 from 198.18.1.2 0 0 46884 60999\n"    /* fsb's block */
				    "4 100.96.0.5 from 198.18.1.4 32768 0 16384 17407\n" /* translating: XOR 0x8000 */
				    "5 100.96.0.6 from 198.18.1.3 0 0 1 65535\n"        /* random: any port */
				    "6 100.96.0.7 from 10.5.0.3 0 0 1 65535\n"          /* a LAN member */
				    "6 100.96.0.7 from 10.5.0.4 0 0 0 10\n"             /* lo 0: skipped */
				    "6 100.96.0.7 from 0.0.0.0 0 0 1 10\n";             /* no address: skipped */
		CHECK(routes_parse(ftext, strlen(ftext), &ft) == 5);
		CHECK(ft.ns == 5);
		struct route nr;
		CHECK(routes_classify_peer(&ft, 0xc6120003, 40000, &nr) == PEER_NAMED && nr.vaddr == 0x64600002);
		CHECK(routes_classify_peer(&ft, 0xc6120102, 40000, &nr) == PEER_ASK);     /* fsa's block */
		CHECK(routes_classify_peer(&ft, 0xc6120102, 50000, &nr) == PEER_ASK);     /* fsb's block */
		CHECK(routes_classify_peer(&ft, 0xc6120102, 20000, &nr) == PEER_OUTSIDE); /* behind that NAT, no member's port */
		CHECK(routes_classify_peer(&ft, 0xc6120102, 61000, &nr) == PEER_OUTSIDE);
		CHECK(routes_classify_peer(&ft, 0xc6120104, 16384 ^ 0x8000, &nr) == PEER_ASK);
		CHECK(routes_classify_peer(&ft, 0xc6120104, 17407 ^ 0x8000, &nr) == PEER_ASK);
		CHECK(routes_classify_peer(&ft, 0xc6120104, 17408 ^ 0x8000, &nr) == PEER_OUTSIDE);
		CHECK(routes_classify_peer(&ft, 0xc6120104, 16384, &nr) == PEER_OUTSIDE); /* the local port itself: not how it appears */
		CHECK(routes_classify_peer(&ft, 0xc6120103, 1, &nr) == PEER_ASK);         /* random NAT: any port */
		CHECK(routes_classify_peer(&ft, 0x0a050003, 5555, &nr) == PEER_ASK);      /* LAN */
		CHECK(routes_classify_peer(&ft, 0x0a050004, 5, &nr) == PEER_OUTSIDE);
		CHECK(routes_classify_peer(&ft, 0xc6120002, 40000, &nr) == PEER_OUTSIDE); /* a public host, no member */
		CHECK(routes_classify_peer(&ft, 0x7f000001, 40000, &nr) == PEER_OUTSIDE); /* curl on this host */
		/* An offset mapping is inverted too: q = ((p ^ xor) + offset) & 0xffff. */
		struct source so = { .ip = 1, .offset = -100, .xor_ = 5, .lo = 1000, .hi = 1000 };
		CHECK(source_matches(&so, 1, (uint16_t)(((1000 ^ 5) - 100) & 0xffff)));
		CHECK(!source_matches(&so, 1, (uint16_t)(((1001 ^ 5) - 100) & 0xffff)));
		CHECK(!source_matches(&so, 2, (uint16_t)(((1000 ^ 5) - 100) & 0xffff)));
		/* Members on loopback (a network on one host): a loopback client may be one; never named from the table. */
		const char *ltext = "1 100.96.0.2 direct 127.0.0.1 0 0 0 0\n1 100.96.0.2 from 127.0.0.1 0 0 1 65535\n";
		routes_parse(ltext, strlen(ltext), &ft);
		CHECK(routes_classify_peer(&ft, 0x7f000001, 40000, &nr) == PEER_ASK);
	}
}

static void test_svc(void)
{
	/* `svc` lines and service_pick: members in address order, picked round robin; none: -1; no service: 0. */
	{
		static struct route_table st;
		const char *stext = "1 100.96.0.2 direct 198.18.0.3 0 0 0 0\n"
				    "3 100.96.255.254 svc 100.96.0.4 0 0 0 0\n"
				    "1 100.96.255.254 svc 100.96.0.2 0 0 0 0\n"
				    "2 100.96.255.254 svc 100.96.0.3 0 0 0 0\n"
				    "0 100.96.255.253 svc 0.0.0.0 0 0 0 0\n"
				    "0 100.96.255.252 svc bogus 0 0 0 0\n";
		CHECK(routes_parse(stext, strlen(stext), &st) == 1);
		CHECK(st.nsvc == 4);
		uint32_t m = 0, seen[3] = {0};
		for (uint32_t c = 7; c < 7 + 30; c++) {
			CHECK(service_pick(&st, 0x6460fffe, c, &m) == 1);
			if (m >= 0x64600002 && m <= 0x64600004)
				seen[m - 0x64600002]++;
		}
		CHECK(seen[0] == 10 && seen[1] == 10 && seen[2] == 10); /* evenly, per connection */
		CHECK(service_pick(&st, 0x6460fffe, 0, &m) == 1 && m == 0x64600002);
		CHECK(service_pick(&st, 0x6460fffd, 0, &m) == -1);
		CHECK(service_pick(&st, 0x6460fffc, 0, &m) == 0);
		CHECK(service_pick(&st, 0x64600002, 0, &m) == 0); /* a member, not a service */
	}
}

/* One function a part of the table's behaviour, in the order of routes.h. */
int main(void)
{
	test_parse();
	test_find_peer();
	test_bounded();
	test_uniform();
	test_pick();
	test_fork();
	test_file();
	test_from();
	test_svc();
	return check_done("test_routes");
}

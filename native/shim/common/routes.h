/* The route table (BOXER_ROUTES_FILE, docs/shim-protocol.md): one member per line,
 *   ID VADDR KIND IP XOR OFFSET LO HI        KIND: direct | direct-quiet | punch | agent | none | self
 * from which connect() decides where the program's socket connects, and accept() names a connection that came
 * straight from a member, without a round trip to the agent; then `from` lines (src/vnet/sources.ts),
 *   ID VADDR from IP XOR OFFSET LO HI
 * each an address and port block a member's direct connections to this member can arrive from (source port q
 * with LO <= ((q - OFFSET) & 0xffff) ^ XOR <= HI), so that accept() leaves a connection no member can have made
 * (a client outside the network) as it is, without asking the agent.
 * Blank lines, lines starting with '#' and lines that do not parse are skipped; when a VADDR appears twice the
 * later line wins. The parser and the port picking are pure (unit-tested in native/test/test_routes.c); the
 * file cache re-reads the file when its mtime, size or inode changes (one stat per lookup), keeps the last
 * good table when a read fails, and is thread-safe. */
#pragma once
#include <stddef.h>
#include <stdint.h>

/* Members in one table (a fixed bound on the shim's memory: two tables of this size live in .bss; lines
 * beyond it are skipped). */
#define ROUTES_MAX 16384
/* A route file larger than this is not read (the last good table stays). */
#define ROUTES_FILE_MAX (4 << 20)
/* Draws of M before a punch route whose (M ^ XOR) + OFFSET keeps leaving [1, 65535] gives up. */
#define ROUTE_PICK_DRAWS 64

enum route_kind {
	ROUTE_DIRECT = 1, /* connect to IP:vport */
	ROUTE_PUNCH,      /* connect to IP:((M ^ XOR) + OFFSET), M uniform in [LO, HI] */
	ROUTE_AGENT,      /* ask the agent (CONNECT) */
	ROUTE_NONE,       /* unreachable: EHOSTUNREACH */
	ROUTE_SELF,       /* this member: loopback */
};

struct route {
	uint32_t vaddr;  /* host order */
	uint32_t ip;     /* host order */
	int32_t offset;  /* [-65535, 65535] */
	uint16_t xor_;
	uint16_t lo, hi; /* punch: 1 <= lo <= hi */
	uint8_t kind;    /* enum route_kind */
	uint8_t quiet;   /* direct-quiet: the agent needs no CONNECTING (the far side names us by our address) */
	uint32_t seq;    /* line order (private: the later line wins) */
};

/* `from` lines in one table (a member has a public address and a few private ones); later lines are skipped. */
#define SOURCES_MAX (2 * ROUTES_MAX)

struct source {
	uint32_t ip; /* host order */
	int32_t offset;
	uint16_t xor_;
	uint16_t lo, hi;
};

/* `svc` lines in one table; later lines are skipped. */
#define SERVICE_LINES_MAX (2 * ROUTES_MAX)

struct svc_line {
	uint32_t vip;    /* host order */
	uint32_t member; /* host order; 0: the service has no member */
};

struct route_table {
	int n; /* sorted by vaddr, one entry per vaddr */
	struct route r[ROUTES_MAX];
	int ns; /* in file order */
	struct source s[SOURCES_MAX];
	int nsvc; /* sorted by vip, then member */
	struct svc_line svc[SERVICE_LINES_MAX];
};

/* What accept() does with a connection from a real address (routes_classify_peer). */
enum peer_class {
	PEER_ASK = 0, /* a member may have made it (or no table): ask the agent (ACCEPTED) */
	PEER_NAMED,   /* the one `direct` member at that address (routes_find_peer) */
	PEER_OUTSIDE, /* no member can have made it: not from the virtual network */
};

/* Parses the file's text (len bytes, need not be NUL-terminated) into t. Returns the number of routes. */
int routes_parse(const char *text, size_t len, struct route_table *t);
/* The route of vaddr, or NULL (binary search). */
const struct route *routes_find(const struct route_table *t, uint32_t vaddr);

/* The member an accepted connection from real address ip (host order) comes from, when the table alone can
 * tell: exactly one route has IP == ip, and it is `direct` (an `open` member at its own address, or a member
 * on a shared LAN at its private one: no NAT between, so the connection's source port is its virtual port).
 * NULL when no route has that address, or several do (members behind one NAT, or several agents on one
 * host: only the agent can tell them apart, from their announcements), or the one that does is not direct.
 * The agent writes a member's public address on `agent` lines too, so that such sharing is visible here.
 * Linear in the table (an accept() of a virtual connection costs one scan, no round trip to the agent). */
const struct route *routes_find_peer(const struct route_table *t, uint32_t ip);

/* Whether a `from` line matches a connection from ip:port (host order). */
int source_matches(const struct source *s, uint32_t ip, uint16_t port);

/* What to do with a connection accepted from ip:port (host order): PEER_NAMED with *named (never for a
 * loopback address: the agent's hand-offs come from there), PEER_OUTSIDE when no `from` line matches, else
 * PEER_ASK. Linear in the table. */
enum peer_class routes_classify_peer(const struct route_table *t, uint32_t ip, uint16_t port, struct route *named);

/* A uniform integer in [0, range) (range >= 1) from a 32-bit random source (Lemire's method, unbiased). */
uint32_t route_uniform(uint32_t (*rnd)(void *), void *ctx, uint32_t range);
/* The far port of a punch route: draws M uniformly in [lo, hi] until (M ^ XOR) + OFFSET (M ^ XOR on 16 bits)
 * is a port in [1, 65535], at most ROUTE_PICK_DRAWS times. Returns 0 with *m and *port, or -1. */
int route_pick(const struct route *r, uint32_t (*rnd)(void *), void *ctx, uint16_t *m, uint16_t *port);

/* Whether vip is a service's address: 1 with *member, the (counter mod n)-th of its n members in address
 * order; -1 when it has no member now; 0 when vip is no service address. (pick.c) */
int service_pick(const struct route_table *t, uint32_t vip, uint32_t counter, uint32_t *member);

/* The shim's random source for route_pick: a per-thread xorshift generator seeded from getrandom() (and
 * re-seeded in a fork child (routes_atfork_child), so parent and child do not draw the same ports). ctx is
 * unused. */
uint32_t route_rand(void *ctx);
/* Re-seeds the random source in a fork child (routes_atfork_child). */
void route_rand_atfork_child(void);

/* Looks vaddr up in the table of the file at path (cached; re-read when the file changed). Returns 1 with
 * *out, or 0 (no such member, no path, or no table could ever be read). Keeps errno. */
int routes_lookup_file(const char *path, uint32_t vaddr, struct route *out);

/* routes_find_peer on the table of the file at path (cached as above). Returns 1 with *out, or 0. Keeps
 * errno. */
int routes_peer_file(const char *path, uint32_t ip, struct route *out);

/* routes_classify_peer on the table of the file at path (cached as above); PEER_ASK when no table could ever be
 * read. Keeps errno. */
enum peer_class routes_classify_file(const char *path, uint32_t ip, uint16_t port, struct route *named);

/* service_pick on the table of the file at path (cached as above), one per connection: round robin from a
 * random start per process. Returns 1 with *member, -1 (no member now), or 0 (no service, or no table). Keeps
 * errno. */
int routes_service_file(const char *path, uint32_t vip, uint32_t *member);

void routes_atfork_prepare(void);
void routes_atfork_parent(void);
void routes_atfork_child(void);

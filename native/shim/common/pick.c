/* The route table's draws (routes.h): the uniform draw, the punch port pick, the shim's random source, and the
 * pick of a service's member (one per connection, round robin from a random start per process). */
#define _GNU_SOURCE
#include "routes.h"

#include <errno.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* ---- port picking (pure) ---- */

uint32_t route_uniform(uint32_t (*rnd)(void *), void *ctx, uint32_t range)
{
	uint64_t m = (uint64_t)rnd(ctx) * range;
	uint32_t l = (uint32_t)m;
	if (l < range) {
		uint32_t t = (uint32_t)(-range) % range;
		while (l < t) {
			m = (uint64_t)rnd(ctx) * range;
			l = (uint32_t)m;
		}
	}
	return (uint32_t)(m >> 32);
}

int route_pick(const struct route *r, uint32_t (*rnd)(void *), void *ctx, uint16_t *m, uint16_t *port)
{
	if (r->kind != ROUTE_PUNCH || r->lo < 1 || r->hi < r->lo)
		return -1;
	uint32_t range = (uint32_t)r->hi - r->lo + 1;
	for (int i = 0; i < ROUTE_PICK_DRAWS; i++) {
		uint32_t mm = r->lo + route_uniform(rnd, ctx, range);
		int32_t p = (int32_t)((mm ^ r->xor_) & 0xffff) + r->offset;
		if (p >= 1 && p <= 65535) {
			*m = (uint16_t)mm;
			*port = (uint16_t)p;
			return 0;
		}
	}
	return -1;
}

/* ---- the shim's random source ---- */

/* Bumped in a fork child (routes_atfork_child): a thread's generator re-seeds when it sees a new value, without
 * a getpid() per draw. */
static uint32_t rng_fork_gen;
static __thread uint64_t rng_state;
static __thread uint32_t rng_gen;

uint32_t route_rand(void *ctx)
{
	(void)ctx;
	uint32_t gen = __atomic_load_n(&rng_fork_gen, __ATOMIC_RELAXED);
	if (rng_state == 0 || rng_gen != gen) {
		pid_t pid = getpid();
		int saved = errno;
		uint64_t seed = 0;
		if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != sizeof seed) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			seed = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)ts.tv_sec ^ (uintptr_t)&rng_state;
		}
		seed ^= (uint64_t)pid << 32;
		rng_state = seed ? seed : 0x2545f4914f6cdd1dull;
		rng_gen = gen;
		errno = saved;
	}
	/* xorshift64* */
	uint64_t x = rng_state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return (uint32_t)((x * 0x2545f4914f6cdd1dull) >> 32);
}

void route_rand_atfork_child(void) { __atomic_add_fetch(&rng_fork_gen, 1, __ATOMIC_RELAXED); }


int service_pick(const struct route_table *t, uint32_t vip, uint32_t counter, uint32_t *member)
{
	int lo = 0, hi = t->nsvc;
	while (lo < hi) { /* the first line of vip */
		int mid = lo + (hi - lo) / 2;
		if (t->svc[mid].vip < vip)
			lo = mid + 1;
		else
			hi = mid;
	}
	int n = 0;
	while (lo + n < t->nsvc && t->svc[lo + n].vip == vip)
		n++;
	if (n == 0)
		return 0;
	const struct svc_line *first = &t->svc[lo];
	if (first->member == 0) { /* a `none` line sorts first: skip it */
		first++;
		n--;
	}
	if (n == 0)
		return -1;
	*member = first[counter % (uint32_t)n].member;
	return 1;
}

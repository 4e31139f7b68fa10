#define _GNU_SOURCE
#include "fdtable.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Descriptors above this are not tracked (their sockets pass through untouched). */
#define FDT_MAX_FD (1 << 20)

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct vsock **slots;
static unsigned nslots;

static int grow(unsigned fd)
{
	if (fd < nslots)
		return 0;
	if (fd >= FDT_MAX_FD)
		return -1;
	unsigned n = nslots ? nslots : 64;
	while (n <= fd)
		n *= 2;
	struct vsock **s = realloc(slots, n * sizeof *s);
	if (!s)
		return -1;
	memset(s + nslots, 0, (n - nslots) * sizeof *s);
	slots = s;
	nslots = n;
	return 0;
}

/* Releases slot fd (lock held). Returns 1 with *last filled if it was the last ref of a listening record. */
static int release(unsigned fd, struct vsock *last)
{
	if (fd >= nslots || !slots[fd])
		return 0;
	struct vsock *v = slots[fd];
	slots[fd] = NULL;
	if (--v->refs > 0)
		return 0;
	int was_listening = v->listening;
	if (was_listening && last)
		*last = *v;
	free(v);
	return was_listening;
}

int fdt_new(int fd, const struct vsock *v)
{
	if (fd < 0)
		return -1;
	struct vsock *n = malloc(sizeof *n);
	if (!n)
		return -1;
	*n = *v;
	n->refs = 1;
	pthread_mutex_lock(&lock);
	if (grow((unsigned)fd) < 0) {
		pthread_mutex_unlock(&lock);
		free(n);
		return -1;
	}
	release((unsigned)fd, NULL);
	slots[fd] = n;
	pthread_mutex_unlock(&lock);
	return 0;
}

int fdt_get(int fd, struct vsock *out)
{
	int found = 0;
	if (fd < 0)
		return 0;
	pthread_mutex_lock(&lock);
	if ((unsigned)fd < nslots && slots[fd]) {
		if (out)
			*out = *slots[fd];
		found = 1;
	}
	pthread_mutex_unlock(&lock);
	return found;
}

int fdt_set(int fd, const struct vsock *v)
{
	int rc = -1;
	if (fd < 0)
		return -1;
	pthread_mutex_lock(&lock);
	if ((unsigned)fd < nslots && slots[fd]) {
		int refs = slots[fd]->refs;
		*slots[fd] = *v;
		slots[fd]->refs = refs;
		rc = 0;
	}
	pthread_mutex_unlock(&lock);
	return rc;
}

void fdt_dup(int oldfd, int newfd)
{
	if (newfd < 0 || oldfd == newfd)
		return;
	pthread_mutex_lock(&lock);
	struct vsock *v = (oldfd >= 0 && (unsigned)oldfd < nslots) ? slots[oldfd] : NULL;
	if (v)
		v->refs++; /* before releasing newfd's, in case it is the same record */
	release((unsigned)newfd, NULL);
	if (v) {
		if (grow((unsigned)newfd) == 0)
			slots[newfd] = v;
		else
			v->refs--;
	}
	pthread_mutex_unlock(&lock);
}

int fdt_remove(int fd, struct vsock *last)
{
	if (fd < 0)
		return 0;
	pthread_mutex_lock(&lock);
	int rc = release((unsigned)fd, last);
	pthread_mutex_unlock(&lock);
	return rc;
}

void fdt_remove_range(unsigned lo, unsigned hi, void (*on_last)(uint16_t port))
{
	uint16_t ports[64];
	int n = 0;
	pthread_mutex_lock(&lock);
	for (unsigned fd = lo; fd < nslots && fd <= hi; fd++) {
		struct vsock last;
		if (release(fd, &last) && n < 64)
			ports[n++] = last.listen_port;
	}
	pthread_mutex_unlock(&lock);
	for (int i = 0; on_last && i < n; i++)
		on_last(ports[i]);
}

int fdt_listening_ports(uint16_t *ports, int max)
{
	int n = 0;
	pthread_mutex_lock(&lock);
	for (unsigned fd = 0; fd < nslots && n < max; fd++) {
		struct vsock *v = slots[fd];
		if (!v || !v->listening)
			continue;
		int seen = 0;
		for (unsigned j = 0; j < fd && !seen; j++)
			seen = slots[j] == v;
		if (!seen)
			ports[n++] = v->listen_port;
	}
	pthread_mutex_unlock(&lock);
	return n;
}

void fdt_reset(void)
{
	pthread_mutex_lock(&lock);
	for (unsigned fd = 0; fd < nslots; fd++)
		release(fd, NULL);
	pthread_mutex_unlock(&lock);
}

void fdt_atfork_prepare(void) { pthread_mutex_lock(&lock); }
void fdt_atfork_parent(void) { pthread_mutex_unlock(&lock); }
void fdt_atfork_child(void) { pthread_mutex_init(&lock, NULL); }

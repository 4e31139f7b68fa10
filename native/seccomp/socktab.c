/* The socket table (socktab.h): open addressing on the inode, linear probing, tombstone-free deletion by
 * backward shift. */
#define _GNU_SOURCE
#include "socktab.h"

#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../shim/common/log.h"

#define CAP (SOCKTAB_MAX * 2) /* slots: load at most 1/2 */

struct slot {
	uint64_t ino; /* 0: empty */
	struct vsock v;
};

static struct slot *tab;
static int count;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static size_t h(uint64_t ino)
{
	ino *= 0x9e3779b97f4a7c15ull;
	return (size_t)(ino >> 32) % CAP;
}

static struct slot *find(uint64_t ino)
{
	if (!tab)
		return NULL;
	for (size_t i = h(ino);; i = (i + 1) % CAP) {
		if (tab[i].ino == ino)
			return &tab[i];
		if (!tab[i].ino)
			return NULL;
	}
}

static void del_slot(size_t i)
{
	tab[i].ino = 0;
	count--;
	for (size_t j = (i + 1) % CAP; tab[j].ino; j = (j + 1) % CAP) {
		size_t k = h(tab[j].ino);
		/* Move j back to i unless its home k lies cyclically in (i, j]. */
		if ((i <= j) ? (i < k && k <= j) : (i < k || k <= j))
			continue;
		tab[i] = tab[j];
		tab[j].ino = 0;
		i = j;
	}
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Appends the socket inodes of /proc/PID/fd to *v. */
static void add_open_of(int pid, uint64_t **v, size_t *n, size_t *cap)
{
	char path[64], link[64];
	snprintf(path, sizeof path, "/proc/%d/fd", pid);
	DIR *d = opendir(path);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		char p[384];
		snprintf(p, sizeof p, "%s/%s", path, e->d_name);
		ssize_t r = readlink(p, link, sizeof link - 1);
		unsigned long long ino;
		if (r <= 0)
			continue;
		link[r] = 0;
		if (sscanf(link, "socket:[%llu]", &ino) != 1)
			continue;
		if (*n == *cap) {
			*cap = *cap ? *cap * 2 : 1024;
			*v = realloc(*v, *cap * sizeof **v);
		}
		(*v)[(*n)++] = ino;
	}
	closedir(d);
}

/* Drops every record whose socket no process has open (a socket's inode is unique while it exists, so
 * every /proc/PID/fd this user can read is scanned: the program's processes among them). Lock held. */
static void sweep_closed(void)
{
	uint64_t *open_inos = NULL;
	size_t n = 0, cap = 0;
	DIR *d = opendir("/proc");
	struct dirent *e;
	while (d && (e = readdir(d))) {
		int pid = atoi(e->d_name);
		if (pid <= 0)
			continue;
		add_open_of(pid, &open_inos, &n, &cap);
	}
	if (d)
		closedir(d);
	if (open_inos)
		qsort(open_inos, n, sizeof *open_inos, cmp_u64);
	for (size_t i = 0; i < CAP;) {
		uint64_t ino = tab[i].ino;
		if (ino && !(open_inos && bsearch(&ino, open_inos, n, sizeof ino, cmp_u64))) {
			del_slot(i); /* re-check slot i: something may have moved into it */
			continue;
		}
		i++;
	}
	free(open_inos);
	shim_debug("seccomp: socket table swept, %d records kept", count);
}

int socktab_get(uint64_t ino, struct vsock *v)
{
	pthread_mutex_lock(&lock);
	struct slot *s = find(ino);
	if (s)
		*v = s->v;
	pthread_mutex_unlock(&lock);
	return s != NULL;
}

void socktab_get_or_new(uint64_t ino, int family, struct vsock *v)
{
	if (!socktab_get(ino, v)) {
		memset(v, 0, sizeof *v);
		v->family = family;
	}
}

void socktab_put(uint64_t ino, const struct vsock *v)
{
	if (!ino)
		return;
	pthread_mutex_lock(&lock);
	if (!tab && !(tab = calloc(CAP, sizeof *tab))) {
		pthread_mutex_unlock(&lock);
		return;
	}
	struct slot *s = find(ino);
	if (!s) {
		if (count >= SOCKTAB_MAX)
			sweep_closed();
		if (count >= SOCKTAB_MAX) { /* every record is an open socket: drop the oldest-found one */
			for (size_t i = h(ino);; i = (i + 1) % CAP)
				if (tab[i].ino && !tab[i].v.listening) {
					del_slot(i);
					break;
				}
		}
		size_t i = h(ino);
		while (tab[i].ino)
			i = (i + 1) % CAP;
		s = &tab[i];
		s->ino = ino;
		count++;
	}
	s->v = *v;
	pthread_mutex_unlock(&lock);
}

void socktab_del(uint64_t ino)
{
	pthread_mutex_lock(&lock);
	struct slot *s = find(ino);
	if (s)
		del_slot((size_t)(s - tab));
	pthread_mutex_unlock(&lock);
}

void socktab_each_listener(int (*fn)(uint64_t ino, const struct vsock *v, void *ctx), void *ctx)
{
	pthread_mutex_lock(&lock);
	for (size_t i = 0; tab && i < CAP;) {
		if (tab[i].ino && tab[i].v.listening && fn(tab[i].ino, &tab[i].v, ctx)) {
			del_slot(i);
			continue;
		}
		i++;
	}
	pthread_mutex_unlock(&lock);
}

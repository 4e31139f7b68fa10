/* listen(2) trapped by the filter: the kernel's listen on the supervisor's copy of the socket (its result
 * is the program's), then, for a TCP listener the virtual network reaches (common/vname.c), LISTEN to the
 * agent (which refuses connects to closed ports). The close of a listener is not trapped (that would cost
 * every close of every file): listen_sweep retracts closed listeners with UNLISTEN, about once a second. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../shim/common/frame.h"
#include "../shim/common/ipc.h"
#include "../shim/common/log.h"
#include "../shim/common/vname.h"
#include "notify.h"
#include "socktab.h"

void on_listen(struct notif *n)
{
	int family, fd = notif_getfd(n, (int)n->req.data.args[0]);
	if (fd < 0) {
		notif_continue(n); /* the kernel's EBADF */
		return;
	}
	if (listen(fd, (int)n->req.data.args[1]) < 0) {
		notif_done(n, fd, -1, errno);
		return;
	}
	uint64_t ino = sock_ino(fd);
	struct vsock v;
	if (sock_is_tcp(fd, &family)) {
		socktab_get_or_new(ino, family, &v);
		if (vlisten_mark(fd, &v)) {
			socktab_put(ino, &v);
			vlisten_report(v.listen_port);
		}
	}
	notif_done(n, fd, 0, 0);
}

/* The inodes of the listening TCP sockets of this network namespace (/proc/net/tcp, tcp6: state 0A). */
struct inos {
	unsigned long long *v;
	size_t n, cap;
};

static void read_listeners(const char *path, struct inos *s)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	char line[512];
	if (!fgets(line, sizeof line, f)) { /* header */
		fclose(f);
		return;
	}
	while (fgets(line, sizeof line, f)) {
		unsigned st;
		unsigned long long ino;
		if (sscanf(line, "%*s %*s %*s %x %*s %*s %*s %*s %*s %llu", &st, &ino) != 2 || st != 0x0A)
			continue;
		if (s->n == s->cap) {
			s->cap = s->cap ? s->cap * 2 : 64;
			s->v = realloc(s->v, s->cap * sizeof *s->v);
		}
		s->v[s->n++] = ino;
	}
	fclose(f);
}

static int closed_listener(uint64_t ino, const struct vsock *v, void *ctx)
{
	struct inos *s = ctx;
	for (size_t i = 0; i < s->n; i++)
		if (s->v[i] == ino)
			return 0;
	uint8_t body[8], reply[16];
	size_t len = body_port(body, v->listen_port);
	if (ipc_request(MSG_UNLISTEN, body, len, reply, sizeof reply, &len, NULL) < 0)
		shim_debug("seccomp: UNLISTEN %u failed: %s", v->listen_port, strerror(errno));
	return 1;
}

void listen_sweep(void)
{
	struct inos s = {0};
	read_listeners("/proc/net/tcp", &s);
	read_listeners("/proc/net/tcp6", &s);
	socktab_each_listener(closed_listener, &s);
	free(s.v);
}

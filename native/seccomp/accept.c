/* accept(2), accept4(2) trapped by the filter. On a listener the supervisor has a record of (listen.c), the
 * supervisor accepts on its copy of the listener, names the connection with the shim's code
 * (common/vaccept.c: self-connect, route table, or ACCEPTED to the agent, which may hand in the punched or
 * relayed socket), writes the virtual peer into the program's addr/addrlen and installs the socket into the
 * program as the call's result (SECCOMP_IOCTL_NOTIF_ADDFD with SECCOMP_ADDFD_FLAG_SEND, O_CLOEXEC per the
 * flags). Other listeners: untouched (continue). A non-blocking listener answers at once (EAGAIN as
 * natively); a blocking one waits on a thread of its own, polling the listener and checking that the
 * program's thread still waits. A connection whose caller left the call before it could be installed (a
 * signal) is kept for the next accept on that listener, never dropped while the supervisor runs. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../shim/common/addr.h"
#include "../shim/common/log.h"
#include "../shim/common/vaccept.h"
#include "notify.h"
#include "socktab.h"

/* How often a blocking accept's thread checks that the program's thread still waits in the call. */
#define ACCEPT_POLL_MS 200
/* Accepted connections kept for the next accept after their caller left (a signal); beyond, closed. */
#define ACCEPT_KEEP_MAX 64

struct kept {
	uint64_t lino; /* the listener */
	int fd;
	struct sockaddr_storage peer;
	socklen_t plen;
	struct vsock v;
};
static struct kept kept[ACCEPT_KEEP_MAX];
static int nkept;
static pthread_mutex_t kept_lock = PTHREAD_MUTEX_INITIALIZER;

static int take_kept(uint64_t lino, struct kept *out)
{
	int found = 0;
	pthread_mutex_lock(&kept_lock);
	for (int i = 0; i < nkept; i++)
		if (kept[i].lino == lino) {
			*out = kept[i];
			kept[i] = kept[--nkept];
			found = 1;
			break;
		}
	pthread_mutex_unlock(&kept_lock);
	return found;
}

static void keep(const struct kept *k)
{
	pthread_mutex_lock(&kept_lock);
	if (nkept < ACCEPT_KEEP_MAX)
		kept[nkept++] = *k;
	else
		close(k->fd);
	pthread_mutex_unlock(&kept_lock);
}

struct acc {
	struct notif n;
	int lfd;       /* our copy of the listener */
	uint64_t lino;
	int flags;     /* accept4's */
	struct vsock lv;
};

/* Accepts one connection (the listener is readable or non-blocking) and names it into *k. Returns 0, or -1
 * with errno (the kernel's accept error, or ECONNABORTED when a hand-off could not be used). */
static int accept_one(struct acc *a, struct kept *k)
{
	k->plen = sizeof k->peer;
	int fd = accept4(a->lfd, (struct sockaddr *)&k->peer, &k->plen, SOCK_CLOEXEC | (a->flags & SOCK_NONBLOCK));
	if (fd < 0)
		return -1;
	memset(&k->v, 0, sizeof k->v);
	k->v.family = a->lv.family;
	k->v.user_keepalive = a->lv.user_keepalive;
	k->lino = a->lino;
	k->fd = fd;
	uint32_t pip;
	uint16_t pport;
	if (addr_get_v4((struct sockaddr *)&k->peer, k->plen, &pip, &pport) < 0)
		return 0;
	int handed;
	int kind = vaccept_name(a->lfd, &a->lv, fd, pip, pport, &k->v, &handed);
	if (handed >= 0) { /* the punched or relayed socket takes the place of the agent's loopback connection */
		close(fd);
		k->fd = fd = handed;
		int fl = fcntl(fd, F_GETFD);
		if (fl >= 0)
			fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
	}
	if (kind == VACCEPT_MEMBER)
		vaccept_options(a->lfd, &a->lv, fd, a->flags, handed >= 0);
	return 0;
}

/* Writes the peer, installs the socket and so answers the call. Keeps the connection if the caller left. */
static void deliver(struct acc *a, struct kept *k)
{
	struct sockaddr_storage ss = k->peer;
	socklen_t sl = k->plen;
	if (k->v.has_peer)
		sl = addr_make(a->lv.family, k->v.vpeer_ip, k->v.vpeer_port, &ss);
	if (notif_write_sockaddr(&a->n, a->n.req.data.args[1], a->n.req.data.args[2], &ss, sl) < 0) {
		if (!notif_valid(&a->n)) {
			keep(k);
			return;
		}
		close(k->fd);
		notif_error(&a->n, EFAULT);
		return;
	}
	uint64_t ino = sock_ino(k->fd);
	if (k->v.has_peer)
		socktab_put(ino, &k->v);
	if (notif_install(&a->n, k->fd, (a->flags & SOCK_CLOEXEC) != 0) < 0) {
		shim_debug("seccomp: accepted connection not installed (%s): kept for the next accept", strerror(errno));
		keep(k);
		return;
	}
	close(k->fd);
}

static void *blocking_accept(void *arg)
{
	struct acc *a = arg;
	struct kept k;
	for (;;) {
		struct pollfd p = {.fd = a->lfd, .events = POLLIN};
		int r = poll(&p, 1, ACCEPT_POLL_MS);
		if (!notif_valid(&a->n))
			break; /* the caller left (a signal; it calls again) */
		if (r <= 0)
			continue;
		if (accept_one(a, &k) < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				continue;
			notif_error(&a->n, errno);
			break;
		}
		deliver(a, &k);
		break;
	}
	close(a->lfd);
	free(a);
	return NULL;
}

void on_accept(struct notif *n, int flags_arg)
{
	int flags = flags_arg ? (int)n->req.data.args[3] : 0;
	int lfd = notif_getfd(n, (int)n->req.data.args[0]);
	struct vsock lv;
	uint64_t lino = lfd >= 0 ? sock_ino(lfd) : 0;
	if (lfd < 0 || !socktab_get(lino, &lv) || !lv.listening || (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC))) {
		if (lfd >= 0)
			close(lfd);
		notif_continue(n);
		return;
	}
	struct acc *a = malloc(sizeof *a);
	if (!a) {
		close(lfd);
		notif_continue(n);
		return;
	}
	*a = (struct acc){.n = *n, .lfd = lfd, .lino = lino, .flags = flags, .lv = lv};
	struct kept k;
	if (take_kept(lino, &k)) { /* accepted for a caller that left: this caller's O_NONBLOCK */
		int fl = fcntl(k.fd, F_GETFL);
		if (fl >= 0)
			fcntl(k.fd, F_SETFL, (flags & SOCK_NONBLOCK) ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK));
		deliver(a, &k);
	} else if (fcntl(lfd, F_GETFL) & O_NONBLOCK) {
		if (accept_one(a, &k) < 0)
			notif_error(n, errno);
		else
			deliver(a, &k);
	} else if (notify_spawn(blocking_accept, a) == 0) {
		return;
	} else {
		notif_continue(n); /* no thread: the kernel's accept, unnamed */
	}
	close(lfd);
	free(a);
}

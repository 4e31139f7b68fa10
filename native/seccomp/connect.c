/* connect(2) trapped by the filter. An address outside the virtual network, or a socket that is not TCP:
 * the kernel runs the call untouched (continue), except a DNS query (UDP or TCP to port 53), which dns.c
 * points at the supervisor's own name server. A virtual address: the same decision as the shim's
 * (common/vconnect.c) on the supervisor's copy of the program's socket (pidfd_getfd: the same open socket),
 * so the program's own kernel socket connects end to end. A non-blocking socket gets the kernel's
 * EINPROGRESS at once (the calling thread never waits on the network); a blocking connect runs on a thread of
 * its own while the program's thread waits in the call, as in a native blocking connect. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../shim/common/addr.h"
#include "../shim/common/config.h"
#include "../shim/common/log.h"
#include "../shim/common/vconnect.h"
#include "dns.h"
#include "notify.h"
#include "socktab.h"

struct pending {
	struct notif n;
	int fd;
	uint64_t ino;
	struct vsock v;
};

/* The kernel connect and its outcome, answered. Frees p. */
static void *finish(void *arg)
{
	struct pending *p = arg;
	int rc = vconnect_kernel(p->fd, &p->v);
	rc = vconnect_finish(p->fd, &p->v, rc, rc < 0 ? errno : 0, 0);
	int err = errno;
	socktab_put(p->ino, &p->v);
	notif_done(&p->n, p->fd, rc, err);
	free(p);
	return NULL;
}

/* A connect to an address outside the virtual network (or not IPv4) is the kernel's, except one to a
 * nameserver, which goes to the supervisor's DNS server. Returns 1 when it answered the call, else 0 with the
 * address in ip:port. */
static int outside_network(struct notif *n, struct sockaddr_storage *ss, socklen_t sl, uint32_t *ip, uint16_t *port)
{
	if (addr_get_v4((struct sockaddr *)ss, sl, ip, port) == 0 && !addr_in_net(*ip, shim_cfg.net, shim_cfg.mask)) {
		if (*port == DNS_PORT && dns_redirect(n, (int)n->req.data.args[0], ss, sl))
			return 1;
		notif_continue(n);
		return 1;
	}
	if (addr_get_v4((struct sockaddr *)ss, sl, ip, port) < 0) {
		if (dns_is_v6_nameserver(ss, sl) && dns_redirect(n, (int)n->req.data.args[0], ss, sl))
			return 1;
		notif_continue(n);
		return 1;
	}
	return 0;
}

void on_connect(struct notif *n)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	uint32_t ip;
	uint16_t port;
	if (notif_read_sockaddr(n, n->req.data.args[1], n->req.data.args[2], &ss, &sl) < 0) {
		notif_continue(n); /* let the kernel give the program its own EFAULT/EINVAL */
		return;
	}
	if (outside_network(n, &ss, sl, &ip, &port))
		return;
	int family;
	int fd = notif_getfd(n, (int)n->req.data.args[0]);
	if (fd < 0 || !sock_is_tcp(fd, &family)) {
		if (fd >= 0)
			close(fd);
		notif_continue(n); /* UDP to a virtual address: sent to the real, unroutable address, as the shim does */
		return;
	}
	uint64_t ino = sock_ino(fd);
	struct vsock v;
	socktab_get_or_new(ino, family, &v);
	if (v.state != VS_NONE) { /* again on a socket already connecting: the kernel says EALREADY/EISCONN */
		int rc = vconnect_kernel(fd, &v);
		notif_done(n, fd, rc, errno);
		return;
	}
	int nonblock = (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0;
	int plan = vconnect_prepare(fd, &v, ip, port, nonblock);
	if (plan < 0) {
		notif_done(n, fd, -1, errno);
		return;
	}
	socktab_put(ino, &v);
	if (plan == VCONNECT_SELF || nonblock) {
		int rc = vconnect_kernel(fd, &v);
		if (plan == VCONNECT_REMOTE) {
			rc = vconnect_finish(fd, &v, rc, rc < 0 ? errno : 0, 1);
			socktab_put(ino, &v);
		}
		notif_done(n, fd, rc, errno);
		return;
	}
	struct pending *p = malloc(sizeof *p);
	if (!p || (p->n = *n, p->fd = fd, p->ino = ino, p->v = v, notify_spawn(finish, p) < 0)) {
		shim_debug("seccomp: no thread for a blocking connect: %s", strerror(errno));
		free(p);
		close(fd);
		notif_error(n, ENETUNREACH);
	}
}

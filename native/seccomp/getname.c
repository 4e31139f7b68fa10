/* getsockname(2), getpeername(2) trapped by the filter: a socket the supervisor has a record of shows its
 * virtual names (common/vname.c), written into the program's memory; getpeername keeps the kernel's ENOTCONN
 * while a connect is in progress. Other sockets run untouched in the kernel. */
#define _GNU_SOURCE
#include <errno.h>
#include <unistd.h>

#include "../shim/common/vname.h"
#include "notify.h"
#include "socktab.h"

static void on_name(struct notif *n, int peer)
{
	int fd = notif_getfd(n, (int)n->req.data.args[0]);
	struct vsock v;
	if (fd < 0 || !socktab_get(sock_ino(fd), &v) || !(peer ? v.has_peer : v.has_local)) {
		if (fd >= 0)
			close(fd);
		notif_continue(n);
		return;
	}
	struct sockaddr_storage ss;
	socklen_t sl = sizeof ss;
	if (peer && getpeername(fd, (struct sockaddr *)&ss, &sl) < 0) {
		int err = errno;
		close(fd);
		notif_error(n, err); /* ENOTCONN while connecting, as natively */
		return;
	}
	sl = peer ? vname_peer(&v, &ss) : vname_local(fd, &v, &ss);
	close(fd);
	if (!n->req.data.args[1] || !n->req.data.args[2] ||
	    notif_write_sockaddr(n, n->req.data.args[1], n->req.data.args[2], &ss, sl) < 0) {
		notif_error(n, EFAULT);
		return;
	}
	notif_value(n, 0);
}

void on_getsockname(struct notif *n)
{
	on_name(n, 0);
}

void on_getpeername(struct notif *n)
{
	on_name(n, 1);
}

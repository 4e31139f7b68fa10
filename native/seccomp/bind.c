/* bind(2) trapped by the filter: the member's own virtual address binds the wildcard on the same port (the
 * shim's plan, common/vname.c), on the supervisor's copy of the program's socket; another member's address is
 * EADDRNOTAVAIL; anything else runs untouched in the kernel. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "../shim/common/vname.h"
#include "notify.h"
#include "socktab.h"

void on_bind(struct notif *n)
{
	struct sockaddr_storage ss, real;
	socklen_t sl, rl;
	if (notif_read_sockaddr(n, n->req.data.args[1], n->req.data.args[2], &ss, &sl) < 0) {
		notif_continue(n);
		return;
	}
	int plan = vbind_plan((struct sockaddr *)&ss, sl, &real, &rl);
	if (plan == VBIND_NATIVE) {
		notif_continue(n);
		return;
	}
	if (plan < 0) {
		notif_error(n, errno);
		return;
	}
	int family, fd = notif_getfd(n, (int)n->req.data.args[0]);
	if (fd < 0) {
		notif_error(n, EBADF);
		return;
	}
	if (!sock_is_tcp(fd, &family)) {
		close(fd);
		notif_continue(n);
		return;
	}
	if (bind(fd, (struct sockaddr *)&real, rl) < 0) {
		notif_done(n, fd, -1, errno);
		return;
	}
	uint64_t ino = sock_ino(fd);
	struct vsock v;
	socktab_get_or_new(ino, family, &v);
	vbind_record(&v);
	socktab_put(ino, &v);
	notif_done(n, fd, 0, 0);
}

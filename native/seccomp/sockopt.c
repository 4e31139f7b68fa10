/* getsockopt(SOL_SOCKET, SO_ERROR) and setsockopt(SOL_SOCKET, SO_KEEPALIVE), the only socket options the
 * filter traps (it compares the level and name in the arguments). SO_ERROR of a socket whose virtual connect
 * is pending: the shim's answer (common/vconnect.c: the kernel's error, or the agent's virtual outcome once
 * the kernel's connect ended; the keepalive armed). SO_KEEPALIVE set by the program: the supervisor leaves
 * keepalive to it, as the shim does. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "../shim/common/vconnect.h"
#include "notify.h"
#include "socktab.h"

void on_getsockopt(struct notif *n)
{
	int fd = notif_getfd(n, (int)n->req.data.args[0]);
	struct vsock v;
	uint64_t ino = fd >= 0 ? sock_ino(fd) : 0;
	if (fd < 0 || !socktab_get(ino, &v) || v.state != VS_PENDING) {
		if (fd >= 0)
			close(fd);
		notif_continue(n);
		return;
	}
	int kerr, changed;
	if (vconnect_so_error(fd, &v, &kerr, &changed) < 0) {
		int err = errno;
		close(fd);
		notif_error(n, err);
		return;
	}
	close(fd);
	struct vsock cur;
	if (changed && socktab_get(ino, &cur) && cur.state == VS_PENDING) {
		cur.state = VS_DONE;
		socktab_put(ino, &cur);
	}
	uint64_t val = n->req.data.args[3], lenp = n->req.data.args[4];
	uint32_t cap;
	if (!val || !lenp || notif_read(n, lenp, &cap, sizeof cap) < 0) {
		notif_error(n, EFAULT);
		return;
	}
	uint32_t m = cap < sizeof kerr ? cap : (uint32_t)sizeof kerr;
	if (notif_write(n, val, &kerr, m) < 0 || notif_write(n, lenp, &m, sizeof m) < 0) {
		notif_error(n, EFAULT);
		return;
	}
	notif_value(n, 0);
}

void on_setsockopt(struct notif *n)
{
	int fd = notif_getfd(n, (int)n->req.data.args[0]);
	int on = 0;
	uint64_t ino = fd >= 0 ? sock_ino(fd) : 0;
	struct vsock v;
	/* The kernel sets the option (continue); the record only remembers the program chose. */
	if (fd >= 0 && socktab_get(ino, &v) && !v.user_keepalive && n->req.data.args[4] >= sizeof on &&
	    notif_read(n, n->req.data.args[3], &on, sizeof on) == 0) {
		v.user_keepalive = 1;
		socktab_put(ino, &v);
	}
	if (fd >= 0)
		close(fd);
	notif_continue(n);
}

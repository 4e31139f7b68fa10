/* getsockopt(SO_ERROR) on a socket whose virtual connect is pending: once the kernel's connect has ended,
 * the agent's CONNECT_RESULT (asked without waiting) gives the virtual outcome (ECONNREFUSED when nothing
 * listens on the far port, ETIMEDOUT when the member died); else the kernel's error. On a `direct` route
 * (connect.c) the kernel's error is the outcome and the agent is not asked. While the connect is
 * still in progress it returns 0 without asking. setsockopt(SO_KEEPALIVE) marks the socket so the shim
 * leaves keepalive to the program. Everything else passes through. Returns 0, or -1 with errno. */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "common/config.h"
#include "common/fdtable.h"
#include "common/frame.h"
#include "common/ipc.h"
#include "common/libc.h"
#include "common/sockutil.h"
#include "common/vconnect.h"

int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	struct vsock v;
	if (level != SOL_SOCKET || name != SO_ERROR || !shim_enabled() || !fdt_get(fd, &v) ||
	    v.state != VS_PENDING)
		return REAL(getsockopt)(fd, level, name, val, len);
	int kerr, changed;
	if (vconnect_so_error(fd, &v, &kerr, &changed) < 0)
		return -1;
	struct vsock cur;
	if (changed && fdt_get(fd, &cur) && cur.state == VS_PENDING) {
		cur.state = VS_DONE;
		fdt_set(fd, &cur);
	}
	if (val && len) {
		socklen_t n2 = *len < sizeof kerr ? *len : (socklen_t)sizeof kerr;
		memcpy(val, &kerr, n2);
		*len = n2;
	}
	return 0;
}

int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	int rc = REAL(setsockopt)(fd, level, name, val, len);
	struct vsock v;
	if (rc == 0 && level == SOL_SOCKET && name == SO_KEEPALIVE && shim_enabled() && fdt_get(fd, &v) &&
	    !v.user_keepalive) {
		v.user_keepalive = 1;
		fdt_set(fd, &v);
	}
	return rc;
}

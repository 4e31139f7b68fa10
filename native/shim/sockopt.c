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

int getsockopt(int fd, int level, int name, void *val, socklen_t *len)
{
	struct vsock v;
	if (level != SOL_SOCKET || name != SO_ERROR || !shim_enabled() || !fdt_get(fd, &v) ||
	    v.state != VS_PENDING)
		return REAL(getsockopt)(fd, level, name, val, len);
	int kerr = 0;
	socklen_t kl = sizeof kerr;
	if (REAL(getsockopt)(fd, SOL_SOCKET, SO_ERROR, &kerr, &kl) < 0)
		return -1;
	int saved = errno;
	if (kerr == 0) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		if (REAL(getpeername)(fd, (struct sockaddr *)&ss, &sl) < 0) {
			errno = saved; /* still connecting */
			goto out;
		}
	}
	if (!v.direct) {
		uint8_t body[16], reply[16];
		size_t n = body_connect_result(body, v.conn_id, 0);
		int32_t verr;
		if (ipc_request(MSG_CONNECT_RESULT, body, n, reply, sizeof reply, &n, NULL) == 0 &&
		    parse_errno_reply(reply, n, &verr) == 0 && verr != 0 && verr != EINPROGRESS)
			kerr = verr;
	}
	errno = saved;
	if (fdt_get(fd, &v) && v.state == VS_PENDING) {
		v.state = VS_DONE;
		fdt_set(fd, &v);
		if (kerr == 0 && !v.user_keepalive)
			shim_keepalive_arm(fd);
	}
out:
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

/* connect() to an address inside the virtual network: the program's own socket is the one that connects
 * (epoll registrations belong to the open file, so nothing may be swapped in afterwards). The decision (own
 * address over loopback; another member from the route table or the agent) is common/vconnect.c, shared with
 * the seccomp supervisor; this wrapper keeps the fd table's record of the socket around it:
 * prepare (record stored before the kernel connect, so SO_ERROR from another thread sees it pending), the
 * kernel connect, then the outcome. Non-blocking: the kernel's EINPROGRESS is returned (no network wait);
 * SO_ERROR (sockopt.c) reports the outcome.
 * Returns 0, or -1 with errno (docs/shim-protocol.md, "Errors the program sees"); addresses outside the
 * virtual network and non-TCP sockets pass through untouched. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "common/addr.h"
#include "common/config.h"
#include "common/fdtable.h"
#include "common/libc.h"
#include "common/sockutil.h"
#include "common/vconnect.h"

int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	uint32_t ip;
	uint16_t port;
	struct vsock v;
	if (!shim_enabled() || addr_get_v4(addr, len, &ip, &port) < 0 ||
	    !addr_in_net(ip, shim_cfg.net, shim_cfg.mask) || !shim_track(fd, &v))
		return REAL(connect)(fd, addr, len);
	if (v.state != VS_NONE) /* again on a socket already connecting: the kernel says EALREADY/EISCONN */
		return vconnect_kernel(fd, &v);
	int nonblock = (REAL(fcntl)(fd, F_GETFL) & O_NONBLOCK) != 0;
	int plan = vconnect_prepare(fd, &v, ip, port, nonblock);
	if (plan < 0)
		return -1;
	fdt_set(fd, &v);
	int rc = vconnect_kernel(fd, &v);
	if (plan == VCONNECT_SELF)
		return rc;
	rc = vconnect_finish(fd, &v, rc, rc < 0 ? errno : 0, nonblock);
	int err = errno;
	fdt_set(fd, &v);
	errno = err;
	return rc;
}

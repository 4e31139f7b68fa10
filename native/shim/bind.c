/* bind(): binding to the member's own virtual address binds the real socket to the wildcard address
 * (0.0.0.0, or :: for an AF_INET6 socket) on the same port, so the kernel still gives EADDRINUSE for a port
 * another program listens on, as natively; getsockname() then shows the virtual address. Binding to another
 * virtual address fails with EADDRNOTAVAIL (it is not ours, as natively). Other addresses pass through.
 * Returns 0, or -1 with errno, like bind(2). */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "common/addr.h"
#include "common/config.h"
#include "common/fdtable.h"
#include "common/libc.h"
#include "common/sockutil.h"

int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	uint32_t ip;
	uint16_t port;
	if (!shim_enabled() || addr_get_v4(addr, len, &ip, &port) < 0 ||
	    !addr_in_net(ip, shim_cfg.net, shim_cfg.mask))
		return REAL(bind)(fd, addr, len);
	if (ip != shim_cfg.self || !shim_cfg.self) {
		errno = EADDRNOTAVAIL;
		return -1;
	}
	struct sockaddr_storage ss;
	socklen_t sl;
	if (addr->sa_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		memset(&ss, 0, sizeof ss);
		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_any;
		s6->sin6_port = htons(port);
		sl = sizeof *s6;
	} else {
		sl = addr_make(AF_INET, 0, port, &ss);
	}
	int rc = REAL(bind)(fd, (struct sockaddr *)&ss, sl);
	if (rc < 0)
		return rc;
	struct vsock v;
	if (shim_track(fd, &v)) {
		v.bound_virtual = 1;
		v.has_local = 1;
		v.vlocal_ip = shim_cfg.self;
		v.vlocal_port = 0; /* the real port (the program may have asked for port 0) */
		fdt_set(fd, &v);
	}
	return 0;
}

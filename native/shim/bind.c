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
#include "common/vname.h"

int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int plan = shim_enabled() ? vbind_plan(addr, len, &ss, &sl) : VBIND_NATIVE;
	if (plan < 0)
		return -1;
	if (plan == VBIND_NATIVE)
		return REAL(bind)(fd, addr, len);
	int rc = REAL(bind)(fd, (struct sockaddr *)&ss, sl);
	if (rc < 0)
		return rc;
	struct vsock v;
	if (shim_track(fd, &v)) {
		vbind_record(&v);
		fdt_set(fd, &v);
	}
	return 0;
}

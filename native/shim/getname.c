/* getsockname(), getpeername(): a socket of the virtual network shows virtual addresses, in the family the
 * program sees (AF_INET, or v4-mapped AF_INET6 for an AF_INET6 socket, including a handed AF_INET socket
 * accepted on an AF_INET6 listener). getpeername() keeps the kernel's ENOTCONN while a connect is still in
 * progress. Other sockets pass through. Returns 0, or -1 with errno. */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/socket.h>

#include "common/addr.h"
#include "common/config.h"
#include "common/fdtable.h"
#include "common/libc.h"
#include "common/sockutil.h"
#include "common/vname.h"

int getsockname(int fd, struct sockaddr *addr, socklen_t *len)
{
	struct vsock v;
	if (!shim_enabled() || !fdt_get(fd, &v) || !v.has_local)
		return REAL(getsockname)(fd, addr, len);
	if (!addr || !len) {
		errno = EFAULT;
		return -1;
	}
	struct sockaddr_storage ss;
	socklen_t sl = vname_local(fd, &v, &ss);
	addr_copy_out(&ss, sl, addr, len);
	return 0;
}

int getpeername(int fd, struct sockaddr *addr, socklen_t *len)
{
	struct vsock v;
	if (!shim_enabled() || !fdt_get(fd, &v) || !v.has_peer)
		return REAL(getpeername)(fd, addr, len);
	struct sockaddr_storage real;
	socklen_t rl = sizeof real;
	if (REAL(getpeername)(fd, (struct sockaddr *)&real, &rl) < 0)
		return -1; /* ENOTCONN while connecting, as natively */
	if (!addr || !len) {
		errno = EFAULT;
		return -1;
	}
	struct sockaddr_storage ss;
	socklen_t sl = vname_peer(&v, &ss);
	addr_copy_out(&ss, sl, addr, len);
	return 0;
}

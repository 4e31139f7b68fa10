/* listen(): a TCP socket listening where the virtual network reaches it (its own virtual address, 0.0.0.0
 * or ::) is reported to the agent with LISTEN, so the agent can refuse connects to closed ports; the record
 * remembers it, so the channel re-reports it when it reopens, and close of the last descriptor sends
 * UNLISTEN (socket.c). The listen itself is the kernel's: its result and errno are returned unchanged, even
 * when the agent cannot be told (the program keeps serving native clients; the port is re-reported when the
 * channel reopens). */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "common/addr.h"
#include "common/config.h"
#include "common/fdtable.h"
#include "common/frame.h"
#include "common/ipc.h"
#include "common/libc.h"
#include "common/log.h"
#include "common/sockutil.h"

/* 1 if the socket's real local address is reachable from the virtual network, with its port. */
static int reachable(int fd, const struct vsock *v, uint16_t *port)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	if (REAL(getsockname)(fd, (struct sockaddr *)&ss, &len) < 0)
		return 0;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		*port = ntohs(sin->sin_port);
		return v->bound_virtual || sin->sin_addr.s_addr == htonl(INADDR_ANY);
	}
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		static const uint8_t mapped_any[16] = {[10] = 0xff, [11] = 0xff};
		*port = ntohs(s6->sin6_port);
		return v->bound_virtual || IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr) ||
		       memcmp(&s6->sin6_addr, mapped_any, 16) == 0;
	}
	return 0;
}

int listen(int fd, int backlog)
{
	int rc = REAL(listen)(fd, backlog);
	if (rc < 0 || !shim_enabled())
		return rc;
	int saved = errno;
	struct vsock v;
	uint16_t port;
	if (!shim_track(fd, &v) || v.listening || !reachable(fd, &v, &port))
		goto out;
	v.listening = 1;
	v.listen_port = port;
	fdt_set(fd, &v);
	int32_t err = 0;
	if (ipc_report_listen(port, &err) < 0)
		shim_debug("LISTEN %u not reported (%s); re-reported when the channel reopens", port, strerror(errno));
	else if (err)
		shim_debug("LISTEN %u: agent answered %s", port, strerror(err));
out:
	errno = saved;
	return rc;
}

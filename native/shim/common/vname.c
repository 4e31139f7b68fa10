/* The virtual addresses of a socket (vname.h): bind to the own virtual address binds the wildcard on the
 * same port (the kernel still says EADDRINUSE for a port another program holds); another virtual address is
 * EADDRNOTAVAIL; a listener on the wildcard or the own virtual address is reachable; getsockname shows the
 * own virtual address and the real (or recorded) port, getpeername the far member's. */
#define _GNU_SOURCE
#include "vname.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "addr.h"
#include "config.h"
#include "ipc.h"
#include "log.h"
#include "libc.h"
#include "sockutil.h"

int vbind_plan(const struct sockaddr *addr, socklen_t len, struct sockaddr_storage *ss, socklen_t *sl)
{
	uint32_t ip;
	uint16_t port;
	if (addr_get_v4(addr, len, &ip, &port) < 0 || !addr_in_net(ip, shim_cfg.net, shim_cfg.mask))
		return VBIND_NATIVE;
	if (ip != shim_cfg.self || !shim_cfg.self) {
		errno = EADDRNOTAVAIL;
		return -1;
	}
	if (addr->sa_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		memset(ss, 0, sizeof *ss);
		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_any;
		s6->sin6_port = htons(port);
		*sl = sizeof *s6;
	} else {
		*sl = addr_make(AF_INET, 0, port, ss);
	}
	return VBIND_VIRTUAL;
}

void vbind_record(struct vsock *v)
{
	v->bound_virtual = 1;
	v->has_local = 1;
	v->vlocal_ip = shim_cfg.self;
	v->vlocal_port = 0; /* the real port (the program may have asked for port 0) */
}

int vlisten_reachable(int fd, const struct vsock *v, uint16_t *port)
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

int vlisten_mark(int fd, struct vsock *v)
{
	uint16_t port;
	if (v->listening || !vlisten_reachable(fd, v, &port))
		return 0;
	v->listening = 1;
	v->listen_port = port;
	return 1;
}

void vlisten_report(uint16_t port)
{
	int saved = errno;
	int32_t err = 0;
	if (ipc_report_listen(port, &err) < 0)
		shim_debug("LISTEN %u not reported (%s); re-reported when the channel reopens", port, strerror(errno));
	else if (err)
		shim_debug("LISTEN %u: agent answered %s", port, strerror(err));
	errno = saved;
}

socklen_t vname_local(int fd, const struct vsock *v, struct sockaddr_storage *ss)
{
	uint16_t port = v->vlocal_port ? v->vlocal_port : shim_real_port(fd);
	return addr_make(v->family, v->vlocal_ip, port, ss);
}

socklen_t vname_peer(const struct vsock *v, struct sockaddr_storage *ss)
{
	return addr_make(v->family, v->vpeer_ip, v->vpeer_port, ss);
}

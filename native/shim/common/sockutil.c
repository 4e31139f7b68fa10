#define _GNU_SOURCE
#include "sockutil.h"
#include "config.h"

#include "addr.h"
#include "ipc.h"
#include "libc.h"
#include "nodes.h"
#include "routes.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <string.h>

int shim_track(int fd, struct vsock *v)
{
	if (fdt_get(fd, v))
		return 1;
	int saved = errno, domain = 0, type = 0;
	socklen_t l1 = sizeof domain, l2 = sizeof type;
	if (REAL(getsockopt)(fd, SOL_SOCKET, SO_DOMAIN, &domain, &l1) < 0 ||
	    REAL(getsockopt)(fd, SOL_SOCKET, SO_TYPE, &type, &l2) < 0 || type != SOCK_STREAM ||
	    (domain != AF_INET && domain != AF_INET6)) {
		errno = saved;
		return 0;
	}
	memset(v, 0, sizeof *v);
	v->family = domain;
	fdt_new(fd, v);
	errno = saved;
	return 1;
}

void shim_keepalive(int fd)
{
	/* The probe interval follows a shortened idle time (a third of it), so a strict NAT sees traffic often. */
	int saved = errno, one = 1, idle = shim_cfg.keepalive_idle_s ? shim_cfg.keepalive_idle_s : SHIM_KEEPALIVE_IDLE_S,
	    intvl = idle < 3 * SHIM_KEEPALIVE_INTVL_S ? (idle + 2) / 3 : SHIM_KEEPALIVE_INTVL_S, cnt = SHIM_KEEPALIVE_CNT;
	REAL(setsockopt)(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
	REAL(setsockopt)(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
	REAL(setsockopt)(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof intvl);
	REAL(setsockopt)(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof cnt);
	errno = saved;
}

void shim_keepalive_arm(int fd)
{
	int saved = errno, idle = shim_cfg.keepalive_idle_s ? shim_cfg.keepalive_idle_s : SHIM_KEEPALIVE_IDLE_S;
	REAL(setsockopt)(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
	errno = saved;
}

static uint16_t range_lo = 32768, range_hi = 60999;
static pthread_once_t range_once = PTHREAD_ONCE_INIT;

static void read_range(void)
{
	int saved = errno;
	int fd = open("/proc/sys/net/ipv4/ip_local_port_range", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		char buf[64];
		ssize_t n = read(fd, buf, sizeof buf - 1);
		REAL(close)(fd);
		unsigned lo, hi;
		if (n > 0) {
			buf[n] = 0;
			if (sscanf(buf, "%u %u", &lo, &hi) == 2 && lo >= 1 && lo <= hi && hi <= 65535) {
				range_lo = (uint16_t)lo;
				range_hi = (uint16_t)hi;
			}
		}
	}
	errno = saved;
}

void shim_port_range(uint16_t *lo, uint16_t *hi)
{
	pthread_once(&range_once, read_range);
	*lo = range_lo;
	*hi = range_hi;
}

uint16_t shim_real_port(int fd)
{
	int saved = errno;
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	uint16_t port = 0;
	if (REAL(getsockname)(fd, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET)
			port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		else if (ss.ss_family == AF_INET6)
			port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	errno = saved;
	return port;
}

/* Lock order: ipc (whose channel_open reads the fd table), then fdtable, then nodes, then routes. */
static void prepare(void)
{
	ipc_atfork_prepare();
	fdt_atfork_prepare();
	nodes_atfork_prepare();
	routes_atfork_prepare();
}
static void parent(void)
{
	routes_atfork_parent();
	nodes_atfork_parent();
	fdt_atfork_parent();
	ipc_atfork_parent();
}
static void child(void)
{
	routes_atfork_child();
	nodes_atfork_child();
	fdt_atfork_child();
	ipc_atfork_child();
}

void shim_register_atfork(void)
{
	pthread_atfork(prepare, parent, child);
}

/* connect() to an address inside the virtual network. The program's own socket is the one that connects
 * (epoll registrations belong to the open file, so nothing may be swapped in afterwards):
 *   - own virtual address: the real connect goes to 127.0.0.1:PORT (from 127.66.0.1 when the socket was
 *     unbound, so the accepting side can show the member's virtual address); kernel semantics throughout.
 *   - another member: bind to port 0 if unbound, then decide where the socket connects (real_ip:real_port):
 *       - from the route table (BOXER_ROUTES_FILE, common/routes.c), without waiting for the agent: `direct`
 *         (IP:vport), `punch` (IP:((M ^ XOR) + OFFSET), M drawn in [LO, HI]); the agent is told with one
 *         reply-less CONNECTING (conn_id = pid << 32 | counter) before the kernel connect, so the far side
 *         starts at once, except on a `direct-quiet` route, where it has nothing to do; `none` fails with
 *         EHOSTUNREACH at once; `self` connects over loopback;
 *       - else (`agent`, or a member not in the table) CONNECT (vaddr, vport, local port) to the agent, which
 *         answers at once (one local round trip).
 *     A service's address (a `svc` line of the table, src/vnet/services.ts) first becomes one of its members,
 *     picked per connection (round robin, pick.c); the socket then connects to that member as above, and shows
 *     it as its peer. A service with no member now: ECONNREFUSED at once.
 *     Then the kernel connect. Non-blocking: the kernel's EINPROGRESS is returned (no network wait); SO_ERROR
 *     (sockopt.c) reports the outcome. Blocking: after the kernel connect returns, CONNECT_RESULT gives the
 *     virtual outcome (ECONNREFUSED when nothing listens on the far port), except on a `direct` route, where
 *     the program's socket reaches the far program's own listener and the kernel's outcome is the virtual
 *     one: no round trip to the agent. SO_SNDTIMEO expiry and EINTR give
 *     the kernel's EINPROGRESS / EINTR, and the connect goes on.
 * Returns 0, or -1 with errno (docs/shim-protocol.md, "Errors the program sees"); addresses outside the
 * virtual network and non-TCP sockets pass through untouched. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/addr.h"
#include "common/config.h"
#include "common/fdtable.h"
#include "common/frame.h"
#include "common/ipc.h"
#include "common/libc.h"
#include "common/log.h"
#include "common/routes.h"
#include "common/sockutil.h"

static int real_connect_to(int fd, int family, uint32_t ip, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t len = addr_make(family, ip, port, &ss);
	return REAL(connect)(fd, (struct sockaddr *)&ss, len);
}

/* The agent's view of a connect whose kernel part ended: its errno if it knows one, else 0. */
static int connect_result(uint64_t conn_id, uint32_t wait_ms)
{
	uint8_t body[16], reply[16];
	size_t n = body_connect_result(body, conn_id, wait_ms);
	int32_t err;
	if (ipc_request(MSG_CONNECT_RESULT, body, n, reply, sizeof reply, &n, NULL) < 0 ||
	    parse_errno_reply(reply, n, &err) < 0 || err == EINPROGRESS)
		return 0;
	return err;
}

static int connect_self(int fd, struct vsock *v, uint32_t vaddr, uint16_t port)
{
	if (shim_real_port(fd) == 0) {
		struct sockaddr_storage ss;
		socklen_t len = addr_make(v->family, SHIM_SELF_MARK_IP, 0, &ss);
		int saved = errno;
		if (REAL(bind)(fd, (struct sockaddr *)&ss, len) < 0)
			errno = saved; /* fine: the peer then sees 127.0.0.1 */
	}
	v->has_peer = 1;
	v->vpeer_ip = vaddr;
	v->vpeer_port = port;
	v->has_local = 1;
	v->vlocal_ip = vaddr;
	v->vlocal_port = 0;
	v->state = VS_DONE;
	v->real_ip = SHIM_LOOPBACK_IP;
	v->real_port = port;
	fdt_set(fd, v);
	return real_connect_to(fd, v->family, SHIM_LOOPBACK_IP, port);
}

/* The connection ids the shim chooses for CONNECTING: pid << 32 | a per-process counter (the agent's own
 * ids stay below 2^32). The counter restarts in a fork child (another pid). */
static uint64_t next_conn_id(void)
{
	static uint32_t counter;
	static pid_t counter_pid;
	pid_t pid = getpid();
	if (__atomic_load_n(&counter_pid, __ATOMIC_ACQUIRE) != pid) {
		__atomic_store_n(&counter, 0, __ATOMIC_RELEASE);
		__atomic_store_n(&counter_pid, pid, __ATOMIC_RELEASE);
	}
	uint32_t c = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
	return (uint64_t)(uint32_t)pid << 32 | c;
}

/* Binds an unbound socket (wildcard address) so its local port is known before the connect. A random port of
 * ip_local_port_range first (up to SHIM_BIND_PROBES tries: at 70% of the range in use, 16 all fail once in 300): bind() to port 0 must find a port no socket uses
 * at all and scans for one, which takes milliseconds once thousands of ports sit in TIME_WAIT; a random free
 * port is found in one or two tries. Then port 0. Returns the port, or 0 with errno (EADDRINUSE /
 * EADDRNOTAVAIL: no local port left, as a native connect says). */
static uint16_t ensure_bound(int fd, struct vsock *v)
{
	uint16_t local = shim_real_port(fd);
	if (local)
		return local;
	int saved = errno;
	struct sockaddr_storage ss;
	socklen_t len = addr_make(AF_INET, 0, 0, &ss);
	if (v->family == AF_INET6) {
		memset(&ss, 0, sizeof ss);
		((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
		len = sizeof(struct sockaddr_in6);
	}
	uint16_t lo, hi;
	shim_port_range(&lo, &hi);
	for (int i = 0; i < SHIM_BIND_PROBES; i++) {
		uint16_t p = (uint16_t)(lo + route_uniform(route_rand, NULL, (uint32_t)hi - lo + 1));
		if (v->family == AF_INET6)
			((struct sockaddr_in6 *)&ss)->sin6_port = htons(p);
		else
			((struct sockaddr_in *)&ss)->sin_port = htons(p);
		if (REAL(bind)(fd, (struct sockaddr *)&ss, len) == 0) {
			errno = saved;
			return p;
		}
		if (errno != EADDRINUSE)
			break;
	}
	if (v->family == AF_INET6)
		((struct sockaddr_in6 *)&ss)->sin6_port = 0;
	else
		((struct sockaddr_in *)&ss)->sin_port = 0;
	if (REAL(bind)(fd, (struct sockaddr *)&ss, len) < 0)
		return 0;
	errno = saved;
	return shim_real_port(fd);
}

/* Where the socket really connects, from the route table. Returns 1 with *real_ip, *real_port, *punch (the far
 * port M, 0 for direct); 2 for a `self` route (loopback); 0 to ask the agent; -1 with errno to fail the call. */
static int route_decide(uint32_t ip, uint16_t port, struct route *r, uint32_t *real_ip, uint16_t *real_port,
			uint16_t *punch)
{
	if (!routes_lookup_file(shim_cfg.routes_file, ip, r))
		return 0;
	switch (r->kind) {
	case ROUTE_NONE:
		errno = EHOSTUNREACH;
		return -1;
	case ROUTE_DIRECT:
		*real_ip = r->ip;
		*real_port = port;
		*punch = 0;
		return 1;
	case ROUTE_PUNCH:
		if (route_pick(r, route_rand, NULL, punch, real_port) < 0) {
			shim_debug("punch route of %08x gives no valid port: asking the agent", ip);
			return 0;
		}
		*real_ip = r->ip;
		return 1;
	case ROUTE_SELF:
		return 2;
	default: /* ROUTE_AGENT */
		return 0;
	}
}

static int connect_remote(int fd, struct vsock *v, uint32_t ip, uint16_t port)
{
	int nonblock = (REAL(fcntl)(fd, F_GETFL) & O_NONBLOCK) != 0;
	struct route route = {0};
	uint32_t real_ip = 0;
	uint16_t real_port = 0, punch = 0;
	int decided = route_decide(ip, port, &route, &real_ip, &real_port, &punch);
	uint32_t member;
	int svc = decided == 0 ? routes_service_file(shim_cfg.routes_file, ip, &member) : 0;
	if (svc < 0) { /* a service with no member now: as a cluster address without endpoints */
		errno = ECONNREFUSED;
		return -1;
	}
	if (svc > 0) { /* a service's address: this connection goes to the member picked */
		ip = member;
		if (ip == shim_cfg.self)
			return connect_self(fd, v, ip, port);
		decided = route_decide(ip, port, &route, &real_ip, &real_port, &punch);
	}
	if (decided < 0)
		return -1;
	if (decided == 2)
		return connect_self(fd, v, ip, port);
	uint16_t local = ensure_bound(fd, v);
	if (local == 0)
		return -1;
	uint64_t conn_id;
	if (decided) {
		/* Tell the agent before the kernel connect, so the far side starts punching at once; no reply. Not on
		 * a direct-quiet route: the far side names us by our address, and waking the agent would cost the
		 * connection tens of microseconds of a shared CPU. */
		conn_id = next_conn_id();
		uint8_t body[32];
		size_t n = body_connecting(body, ip, port, local, real_ip, real_port, punch, conn_id);
		if (!route.quiet && ipc_send(MSG_CONNECTING, body, n) < 0) {
			shim_debug("CONNECTING failed: %s", strerror(errno));
			errno = ENETUNREACH;
			return -1;
		}
	} else {
		uint8_t body[16], reply[64];
		size_t n = body_connect(body, ip, port, local, nonblock ? CONNECT_FLAG_NONBLOCK : 0);
		struct connect_reply r;
		if (ipc_request(MSG_CONNECT, body, n, reply, sizeof reply, &n, NULL) < 0 ||
		    parse_connect_reply(reply, n, &r) < 0) {
			shim_debug("CONNECT failed: %s", strerror(errno));
			errno = ENETUNREACH;
			return -1;
		}
		if (r.err) {
			errno = r.err;
			return -1;
		}
		conn_id = r.conn_id;
		real_ip = r.real_ip;
		real_port = r.real_port;
	}
	if (!v->user_keepalive)
		shim_keepalive(fd);
	v->has_peer = 1;
	v->vpeer_ip = ip;
	v->vpeer_port = port;
	v->has_local = 1;
	v->vlocal_ip = shim_cfg.self;
	v->vlocal_port = local;
	v->state = VS_PENDING;
	v->conn_id = conn_id;
	v->real_ip = real_ip;
	v->real_port = real_port;
	v->direct = decided == 1 && route.kind == ROUTE_DIRECT;
	fdt_set(fd, v);

	int rc = real_connect_to(fd, v->family, real_ip, real_port);
	int err = rc < 0 ? errno : 0;
	if (err == EINPROGRESS || err == EINTR || err == EALREADY)
		return rc; /* in progress: SO_ERROR (or the next connect) reports the outcome */
	if (rc == 0 && nonblock) {
		v->state = VS_DONE;
		fdt_set(fd, v);
		if (!v->user_keepalive)
			shim_keepalive_arm(fd);
		return 0;
	}
	/* The kernel's connect ended: the agent may know the virtual outcome (e.g. nothing listens there). */
	int verr = v->direct ? 0 : connect_result(conn_id, rc == 0 ? SHIM_CONNECT_RESULT_WAIT_MS : 0);
	v->state = VS_DONE;
	fdt_set(fd, v);
	if (verr) {
		errno = verr;
		return -1;
	}
	if (rc == 0 && !v->user_keepalive)
		shim_keepalive_arm(fd);
	if (rc < 0)
		errno = err;
	return rc;
}

int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	uint32_t ip;
	uint16_t port;
	struct vsock v;
	if (!shim_enabled() || addr_get_v4(addr, len, &ip, &port) < 0 ||
	    !addr_in_net(ip, shim_cfg.net, shim_cfg.mask) || !shim_track(fd, &v))
		return REAL(connect)(fd, addr, len);
	if (v.state != VS_NONE) /* again on a socket already connecting: the kernel says EALREADY/EISCONN */
		return real_connect_to(fd, v.family, v.real_ip, v.real_port);
	if (ip == shim_cfg.self)
		return connect_self(fd, &v, ip, port);
	return connect_remote(fd, &v, ip, port);
}

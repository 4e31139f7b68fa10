/* The connect() decision of the virtual network (vconnect.h), moved here from shim/connect.c so that the
 * seccomp supervisor runs the same code on its copy of the program's socket:
 *   - own virtual address: the real connect goes to 127.0.0.1:PORT (from 127.66.0.1 when the socket was
 *     unbound, so the accepting side can show the member's virtual address); kernel semantics throughout.
 *   - another member: bind if unbound (a random port of ip_local_port_range first), then decide where the
 *     socket connects: from the route table (direct, punch: one reply-less CONNECTING, none on direct-quiet;
 *     none: EHOSTUNREACH; self: loopback), else CONNECT to the agent (one local round trip). The kernel
 *     connect follows; a blocking one asks CONNECT_RESULT for the virtual outcome unless the route is direct.
 *   - a service's address (a `svc` line of the table, src/vnet/services.ts) first becomes one of its members,
 *     picked per connection (round robin, pick.c), then as above (the socket shows that member as its peer);
 *     a service with no member now: ECONNREFUSED at once.
 * Details and the errors the program sees: docs/shim.md, "connect sequence". */
#define _GNU_SOURCE
#include "vconnect.h"

#include <errno.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addr.h"
#include "config.h"
#include "frame.h"
#include "ipc.h"
#include "libc.h"
#include "log.h"
#include "routes.h"
#include "sockutil.h"

int vconnect_kernel(int fd, const struct vsock *v)
{
	struct sockaddr_storage ss;
	socklen_t len = addr_make(v->family, v->real_ip, v->real_port, &ss);
	return REAL(connect)(fd, (struct sockaddr *)&ss, len);
}

/* The agent's view of a connect whose kernel part ended: its errno if it knows one, else 0. For a connection
 * the shim named (CONNECTING: a shim id, pid << 32 | n) the agent tells a refusal unasked, before the
 * handshake can complete: read locally (ipc_outcome), no round trip. A connection the agent set up (CONNECT:
 * its ids stay below 2^32) is asked about. */
static int connect_result(uint64_t conn_id, uint32_t wait_ms)
{
	int32_t known;
	if (conn_id >> 32)
		return ipc_outcome(conn_id, &known) ? known : 0;
	uint8_t body[16], reply[16];
	size_t n = body_connect_result(body, conn_id, wait_ms);
	int32_t err;
	if (ipc_request(MSG_CONNECT_RESULT, body, n, reply, sizeof reply, &n, NULL) < 0 ||
	    parse_errno_reply(reply, n, &err) < 0 || err == EINPROGRESS)
		return 0;
	return err;
}

static void prepare_self(int fd, struct vsock *v, uint32_t vaddr, uint16_t port)
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
}

/* The connection ids chosen for CONNECTING: pid << 32 | a per-process counter (the agent's own ids stay
 * below 2^32). The counter restarts in a fork child (another pid). */
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
 * ip_local_port_range first (up to SHIM_BIND_PROBES tries: at 70% of the range in use, 16 all fail once in
 * 300): bind() to port 0 must find a port no socket uses at all and scans for one, which takes milliseconds
 * once thousands of ports sit in TIME_WAIT; a random free port is found in one or two tries. Then port 0.
 * Returns the port, or 0 with errno (EADDRINUSE / EADDRNOTAVAIL: no local port left, as a native connect
 * says). */
static uint16_t ensure_bound(int fd, const struct vsock *v)
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

/* The route to *ip (route_decide's answer), or for a service's address the route to the member picked, *ip
 * then being that member's address (2: this member itself). -1 with errno ECONNREFUSED: a service with no
 * member now (as a cluster address without endpoints). */
static int decide(uint32_t *ip, uint16_t port, struct route *route, uint32_t *real_ip, uint16_t *real_port,
		  uint16_t *punch)
{
	int decided = route_decide(*ip, port, route, real_ip, real_port, punch);
	uint32_t member;
	int svc = decided == 0 ? routes_service_file(shim_cfg.routes_file, *ip, &member) : 0;
	if (svc < 0) {
		errno = ECONNREFUSED;
		return -1;
	}
	if (svc > 0) {
		*ip = member;
		if (*ip == shim_cfg.self)
			return 2;
		decided = route_decide(*ip, port, route, real_ip, real_port, punch);
	}
	return decided;
}

/* The agent route: CONNECT, on a channel of its own (the agent may wait on the network: a relay, a first link);
 * the agent's answer in conn_id and the real address to connect to. -1 with errno (ENETUNREACH: no agent). */
static int ask_agent(uint32_t ip, uint16_t port, uint16_t local, int nonblock, uint64_t *conn_id, uint32_t *real_ip,
		     uint16_t *real_port)
{
	uint8_t body[16], reply[64];
	size_t n = body_connect(body, ip, port, local, nonblock ? CONNECT_FLAG_NONBLOCK : 0);
	struct connect_reply r;
	if (ipc_request_alone(MSG_CONNECT, body, n, reply, sizeof reply, &n) < 0 || parse_connect_reply(reply, n, &r) < 0) {
		shim_debug("CONNECT failed: %s", strerror(errno));
		errno = ENETUNREACH;
		return -1;
	}
	if (r.err) {
		errno = r.err;
		return -1;
	}
	*conn_id = r.conn_id;
	*real_ip = r.real_ip;
	*real_port = r.real_port;
	return 0;
}

int vconnect_prepare(int fd, struct vsock *v, uint32_t ip, uint16_t port, int nonblock)
{
	if (ip == shim_cfg.self) {
		prepare_self(fd, v, ip, port);
		return VCONNECT_SELF;
	}
	struct route route = {0};
	uint32_t real_ip = 0;
	uint16_t real_port = 0, punch = 0;
	int decided = decide(&ip, port, &route, &real_ip, &real_port, &punch);
	if (decided < 0)
		return -1;
	if (decided == 2) {
		prepare_self(fd, v, ip, port);
		return VCONNECT_SELF;
	}
	/* A direct-quiet route tells the agent nothing, so the local port need not be known before the SYN: the
	 * kernel's connect picks it, unique for the 4-tuple, as natively. A port bound in advance can meet a
	 * TIME_WAIT of an earlier connection to the same far port and fail with EADDRINUSE (thousands of
	 * connections a minute to one server). */
	int quiet = decided == 1 && route.quiet;
	uint16_t local = quiet ? 0 : ensure_bound(fd, v);
	if (local == 0 && !quiet)
		return -1;
	uint64_t conn_id;
	if (decided) {
		/* Tell the agent before the kernel connect, so the far side starts punching at once; no reply. Not on
		 * a direct-quiet route: the far side names us by our address, and waking the agent would cost the
		 * connection tens of microseconds of a shared CPU. */
		conn_id = next_conn_id();
		uint8_t body[32];
		size_t n = body_connecting(body, ip, port, local, real_ip, real_port, punch, conn_id);
		if (!quiet && ipc_send(MSG_CONNECTING, body, n) < 0) {
			shim_debug("CONNECTING failed: %s", strerror(errno));
			errno = ENETUNREACH;
			return -1;
		}
	} else if (ask_agent(ip, port, local, nonblock, &conn_id, &real_ip, &real_port) < 0) {
		return -1;
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
	return VCONNECT_REMOTE;
}

int vconnect_finish(int fd, struct vsock *v, int rc, int err, int nonblock)
{
	if (err == EINPROGRESS || err == EINTR || err == EALREADY) {
		errno = err;
		return rc; /* in progress: SO_ERROR (or the next connect) reports the outcome */
	}
	if (rc == 0 && nonblock) {
		v->state = VS_DONE;
		if (!v->user_keepalive)
			shim_keepalive_arm(fd);
		return 0;
	}
	/* The kernel's connect ended: the agent may know the virtual outcome (e.g. nothing listens there). */
	int verr = v->direct ? 0 : connect_result(v->conn_id, rc == 0 ? SHIM_CONNECT_RESULT_WAIT_MS : 0);
	v->state = VS_DONE;
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

int vconnect_so_error(int fd, struct vsock *v, int *err, int *changed)
{
	int kerr = 0;
	socklen_t kl = sizeof kerr;
	*changed = 0;
	if (REAL(getsockopt)(fd, SOL_SOCKET, SO_ERROR, &kerr, &kl) < 0)
		return -1;
	int saved = errno;
	if (kerr == 0) {
		struct sockaddr_storage ss;
		socklen_t sl = sizeof ss;
		if (REAL(getpeername)(fd, (struct sockaddr *)&ss, &sl) < 0) {
			errno = saved; /* still connecting */
			*err = 0;
			return 0;
		}
	}
	if (!v->direct) {
		int verr = connect_result(v->conn_id, 0);
		if (verr)
			kerr = verr;
	}
	errno = saved;
	v->state = VS_DONE;
	*changed = 1;
	if (kerr == 0 && !v->user_keepalive)
		shim_keepalive_arm(fd);
	*err = kerr;
	return 0;
}

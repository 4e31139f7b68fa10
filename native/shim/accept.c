/* accept(), accept4() on a socket listening for the virtual network (listen.c). After the kernel's accept
 * returns a connection, and before the program sees the descriptor:
 *   - from 127.66.0.1 (a self-connect, connect.c): the peer is the member's own virtual address; no IPC.
 *   - from the one member the route table has at that address with a `direct` route (an `open` member, or a
 *     member on a shared LAN: no NAT between, so the source port is its virtual port): named from the table,
 *     no IPC (routes_find_peer); this keeps the time to first byte of such a connection close to native.
 *     Never for a loopback peer.
 *   - from an address and port no member's direct connection can come from (no `from` line of the route
 *     table matches: src/vnet/sources.ts): a client outside the network (a public user, a health check, `curl`
 *     on the same host): left untouched, no IPC, so it costs what it costs natively.
 *   - from 127.66.0.2 (the agent waking accept() to hand a socket over, src/vnet/handoff.ts), from where a
 *     member may be (a NAT address in a member's port block, a LAN address), or without a route table:
 *     ACCEPTED asks the agent who it is from. If the agent itself connected over loopback to wake
 *     this accept(), it passes the real, end-to-end connected socket, which is dup3()ed over the accepted
 *     descriptor with the accept4 flags (O_CLOEXEC; O_NONBLOCK set or cleared) and the options a native
 *     accept inherits from the listener (TCP_NODELAY, SO_KEEPALIVE and its timers, SO_LINGER). The handed
 *     socket is AF_INET; for an AF_INET6 listener the shim shows v4-mapped addresses. If the connection came
 *     straight from a member, the agent names its virtual address. ENOENT: not a virtual-network
 *     connection, left untouched. If the agent cannot be asked, the connection is returned untouched (the
 *     program keeps serving native clients).
 * addr/addrlen get the virtual peer in the listener's family. Returns the new descriptor, or -1 with errno
 * like accept4(2) (ECONNABORTED if the hand-off itself failed: programs retry that). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
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

static void copy_opt(int from, int to, int level, int name)
{
	char val[64];
	socklen_t len = sizeof val;
	if (REAL(getsockopt)(from, level, name, val, &len) == 0)
		REAL(setsockopt)(to, level, name, val, len);
}

/* Makes the handed socket look like one the listener produced. Keeps errno. */
static void inherit_options(int lfd, int fd, int flags)
{
	int saved = errno;
	int fl = REAL(fcntl)(fd, F_GETFL);
	if (fl >= 0)
		REAL(fcntl)(fd, F_SETFL, (flags & SOCK_NONBLOCK) ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK));
	copy_opt(lfd, fd, IPPROTO_TCP, TCP_NODELAY);
	copy_opt(lfd, fd, SOL_SOCKET, SO_KEEPALIVE);
	copy_opt(lfd, fd, IPPROTO_TCP, TCP_KEEPIDLE);
	copy_opt(lfd, fd, IPPROTO_TCP, TCP_KEEPINTVL);
	copy_opt(lfd, fd, IPPROTO_TCP, TCP_KEEPCNT);
	copy_opt(lfd, fd, SOL_SOCKET, SO_LINGER);
	errno = saved;
}

/* The options a connection of the virtual network gets on accept: keepalive (NAT mappings must not idle out)
 * unless the program chose itself, on the listener or on the socket. */
static void accepted_keepalive(int lfd, const struct vsock *lv, int nfd)
{
	int ka = 0;
	socklen_t kl = sizeof ka;
	REAL(getsockopt)(lfd, SOL_SOCKET, SO_KEEPALIVE, &ka, &kl);
	if (!ka && !lv->user_keepalive)
		shim_keepalive(nfd);
}

/* Records in *nv that the accepted connection is from vaddr:vport, to this member's listening port. */
static void name_peer(struct vsock *nv, const struct vsock *lv, uint32_t vaddr, uint16_t vport)
{
	nv->has_peer = 1;
	nv->vpeer_ip = vaddr;
	nv->vpeer_port = vport;
	nv->has_local = 1;
	nv->vlocal_ip = shim_cfg.self;
	nv->vlocal_port = lv->listen_port;
	nv->state = VS_DONE;
}

/* What the route table alone says about the connection nfd from pip:pport (see the top of the file); on
 * PEER_NAMED *nv is filled in. A wake-up from the agent (WAKE_MARK) is always asked about. */
static enum peer_class identify_from_routes(int lfd, const struct vsock *lv, int nfd, uint32_t pip, uint16_t pport,
					    struct vsock *nv)
{
	struct route r;
	if (pip == SHIM_WAKE_MARK_IP)
		return PEER_ASK;
	enum peer_class c = routes_classify_file(shim_cfg.routes_file, pip, pport, &r);
	if (c == PEER_NAMED) {
		accepted_keepalive(lfd, lv, nfd);
		name_peer(nv, lv, r.vaddr, pport);
	}
	return c;
}

/* Asks the agent about the connection nfd and applies its answer to *nv (and maybe swaps nfd's socket).
 * Returns 0, or -1 with errno if the hand-off failed (nfd is then unusable). */
static int identify(int lfd, const struct vsock *lv, int nfd, int flags, uint32_t pip, uint16_t pport,
		    struct vsock *nv)
{
	uint8_t body[16], reply[64];
	size_t n = body_accepted(body, lv->listen_port, pip, pport, shim_real_port(nfd));
	int rfd = -1;
	struct accepted_reply r;
	if (ipc_request(MSG_ACCEPTED, body, n, reply, sizeof reply, &n, &rfd) < 0) {
		shim_debug("ACCEPTED failed (%s): connection left untouched", strerror(errno));
		return 0;
	}
	if (parse_accepted_reply(reply, n, &r) < 0 || r.err) {
		if (rfd >= 0)
			REAL(close)(rfd);
		return 0; /* ENOENT: not ours; anything else: treat it the same */
	}
	if (rfd >= 0) {
		int rc = REAL(dup3)(rfd, nfd, (flags & SOCK_CLOEXEC) ? O_CLOEXEC : 0);
		int err = errno;
		REAL(close)(rfd);
		if (rc < 0) {
			shim_debug("hand-off dup3 failed: %s", strerror(err));
			errno = ECONNABORTED;
			return -1;
		}
		inherit_options(lfd, nfd, flags);
	}
	accepted_keepalive(lfd, lv, nfd);
	name_peer(nv, lv, r.vaddr, r.vport);
	return 0;
}

static int accept_common(int lfd, struct sockaddr *addr, socklen_t *addrlen, int flags)
{
	struct vsock lv;
	if (!shim_enabled() || !fdt_get(lfd, &lv) || !lv.listening) {
		int fd = REAL(accept4)(lfd, addr, addrlen, flags);
		if (fd >= 0 && shim_enabled())
			fdt_remove(fd, NULL); /* a stale record of a descriptor closed behind our back */
		return fd;
	}
	struct sockaddr_storage peer;
	socklen_t plen = sizeof peer;
	int fd = REAL(accept4)(lfd, (struct sockaddr *)&peer, &plen, flags);
	if (fd < 0)
		return fd;
	int saved = errno;
	struct vsock nv;
	memset(&nv, 0, sizeof nv);
	nv.family = lv.family;
	nv.user_keepalive = lv.user_keepalive;
	uint32_t pip;
	uint16_t pport;
	if (addr_get_v4((struct sockaddr *)&peer, plen, &pip, &pport) == 0) {
		if (pip == SHIM_SELF_MARK_IP)
			name_peer(&nv, &lv, shim_cfg.self, pport);
		else if (identify_from_routes(lfd, &lv, fd, pip, pport, &nv) == PEER_ASK &&
			 identify(lfd, &lv, fd, flags, pip, pport, &nv) < 0) {
			int err = errno;
			fdt_remove(fd, NULL);
			REAL(close)(fd);
			errno = err;
			return -1;
		}
	}
	fdt_new(fd, &nv);
	if (nv.has_peer) {
		struct sockaddr_storage ss;
		socklen_t sl = addr_make(lv.family, nv.vpeer_ip, nv.vpeer_port, &ss);
		addr_copy_out(&ss, sl, addr, addrlen);
	} else {
		addr_copy_out(&peer, plen, addr, addrlen);
	}
	errno = saved;
	return fd;
}

int accept(int fd, struct sockaddr *addr, socklen_t *addrlen)
{
	if (!shim_enabled())
		return REAL(accept)(fd, addr, addrlen);
	return accept_common(fd, addr, addrlen, 0);
}

int accept4(int fd, struct sockaddr *addr, socklen_t *addrlen, int flags)
{
	return accept_common(fd, addr, addrlen, flags);
}

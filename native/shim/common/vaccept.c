/* Naming accepted connections (vaccept.h), moved here from shim/accept.c so that the seccomp supervisor runs
 * the same code:
 *   - from 127.66.0.1 (a self-connect, vconnect.c): the peer is the member's own virtual address; no IPC.
 *   - from the one member the route table has at that address with a `direct` route (an `open` member, or a
 *     member on a shared LAN: no NAT between, so the source port is its virtual port): named from the table,
 *     no IPC. Never for a loopback peer.
 *   - from an address and port no member's direct connection can come from (no `from` line of the route
 *     table matches: src/vnet/sources.ts): a client outside the network, left untouched, no IPC.
 *   - from 127.66.0.2 (the agent waking accept() to hand a socket over, src/vnet/handoff.ts), from where a
 *     member may be, or without a route table: ACCEPTED asks the agent. If the agent itself connected over
 *     loopback to wake this accept(),
 *     it passes the real, end-to-end connected socket; if the connection came straight from a member, it
 *     names its virtual address; ENOENT: not a virtual-network connection. If the agent cannot be asked,
 *     the connection stays untouched (the program keeps serving native clients). */
#define _GNU_SOURCE
#include "vaccept.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
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

static void copy_opt(int from, int to, int level, int name)
{
	char val[64];
	socklen_t len = sizeof val;
	if (REAL(getsockopt)(from, level, name, val, &len) == 0)
		REAL(setsockopt)(to, level, name, val, len);
}

void vaccept_options(int lfd, const struct vsock *lv, int fd, int flags, int handed)
{
	int saved = errno;
	if (handed) {
		int fl = REAL(fcntl)(fd, F_GETFL);
		if (fl >= 0)
			REAL(fcntl)(fd, F_SETFL, (flags & SOCK_NONBLOCK) ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK));
		copy_opt(lfd, fd, IPPROTO_TCP, TCP_NODELAY);
		copy_opt(lfd, fd, SOL_SOCKET, SO_KEEPALIVE);
		copy_opt(lfd, fd, IPPROTO_TCP, TCP_KEEPIDLE);
		copy_opt(lfd, fd, IPPROTO_TCP, TCP_KEEPINTVL);
		copy_opt(lfd, fd, IPPROTO_TCP, TCP_KEEPCNT);
		copy_opt(lfd, fd, SOL_SOCKET, SO_LINGER);
	}
	/* Keepalive (NAT mappings must not idle out) unless the program chose, on the listener or the socket. */
	int ka = 0;
	socklen_t kl = sizeof ka;
	REAL(getsockopt)(lfd, SOL_SOCKET, SO_KEEPALIVE, &ka, &kl);
	if (!ka && !lv->user_keepalive)
		shim_keepalive(fd);
	errno = saved;
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

int vaccept_name(int lfd, const struct vsock *lv, int nfd, uint32_t pip, uint16_t pport, struct vsock *nv,
		 int *handed)
{
	(void)lfd;
	*handed = -1;
	if (pip == SHIM_SELF_MARK_IP) {
		name_peer(nv, lv, shim_cfg.self, pport);
		return VACCEPT_SELF;
	}
	/* A wake-up from the agent (a hand-off) is always asked about; otherwise the route table may name the
	 * peer, or say that no member can have made the connection (a client outside the network: untouched). */
	if (pip != SHIM_WAKE_MARK_IP) {
		struct route rt;
		enum peer_class c = routes_classify_file(shim_cfg.routes_file, pip, pport, &rt);
		if (c == PEER_NAMED) {
			name_peer(nv, lv, rt.vaddr, pport);
			return VACCEPT_MEMBER;
		}
		if (c == PEER_OUTSIDE)
			return VACCEPT_NATIVE;
	}
	int saved = errno;
	uint8_t body[16], reply[64];
	size_t n = body_accepted(body, lv->listen_port, pip, pport, shim_real_port(nfd));
	int rfd = -1;
	struct accepted_reply r;
	if (ipc_request(MSG_ACCEPTED, body, n, reply, sizeof reply, &n, &rfd) < 0) {
		shim_debug("ACCEPTED failed (%s): connection left untouched", strerror(errno));
		errno = saved;
		return VACCEPT_NATIVE;
	}
	errno = saved;
	if (parse_accepted_reply(reply, n, &r) < 0 || r.err) {
		if (rfd >= 0)
			REAL(close)(rfd);
		return VACCEPT_NATIVE; /* ENOENT: not ours; anything else: treat it the same */
	}
	*handed = rfd;
	name_peer(nv, lv, r.vaddr, r.vport);
	return VACCEPT_MEMBER;
}

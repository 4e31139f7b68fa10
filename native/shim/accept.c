/* accept(), accept4() on a socket listening for the virtual network (listen.c). After the kernel's accept
 * returns a connection, and before the program sees the descriptor, common/vaccept.c names it (self-connect,
 * route table, or ACCEPTED to the agent; shared with the seccomp supervisor). A socket the agent hands in is
 * dup3()ed over the accepted descriptor with the accept4 flags (O_CLOEXEC; O_NONBLOCK set or cleared) and the
 * listener's options; the descriptor was never visible to the program, so no epoll registration is lost. The
 * handed socket is AF_INET; for an AF_INET6 listener the shim shows v4-mapped addresses.
 * addr/addrlen get the virtual peer in the listener's family. Returns the new descriptor, or -1 with errno
 * like accept4(2) (ECONNABORTED if the hand-off itself failed: programs retry that). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/addr.h"
#include "common/config.h"
#include "common/fdtable.h"
#include "common/libc.h"
#include "common/log.h"
#include "common/vaccept.h"

/* Names the connection fd and swaps in a handed socket. Returns 0, or -1 with errno if the hand-off failed
 * (fd is then unusable). */
static int identify(int lfd, const struct vsock *lv, int fd, int flags, uint32_t pip, uint16_t pport, struct vsock *nv)
{
	int handed;
	int kind = vaccept_name(lfd, lv, fd, pip, pport, nv, &handed);
	if (handed >= 0) {
		int rc = REAL(dup3)(handed, fd, (flags & SOCK_CLOEXEC) ? O_CLOEXEC : 0);
		int err = errno;
		REAL(close)(handed);
		if (rc < 0) {
			shim_debug("hand-off dup3 failed: %s", strerror(err));
			errno = ECONNABORTED;
			return -1;
		}
	}
	if (kind == VACCEPT_MEMBER)
		vaccept_options(lfd, lv, fd, flags, handed >= 0);
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
	if (addr_get_v4((struct sockaddr *)&peer, plen, &pip, &pport) == 0 &&
	    identify(lfd, &lv, fd, flags, pip, pport, &nv) < 0) {
		int err = errno;
		fdt_remove(fd, NULL);
		REAL(close)(fd);
		errno = err;
		return -1;
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

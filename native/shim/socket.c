/* socket(), close(), dup(), dup2(), dup3(), fcntl(F_DUPFD*), close_range(), closefrom(): the descriptor
 * bookkeeping. A new AF_INET/AF_INET6 stream socket gets a record in the fd table; duplicates share it;
 * closing the last descriptor of a listening socket sends UNLISTEN. Everything else passes straight through.
 * Each wrapper returns exactly what the real call returns, with its errno. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/config.h"
#include "common/fdtable.h"
#include "common/frame.h"
#include "common/ipc.h"
#include "common/libc.h"
#include "common/log.h"

/* Sends UNLISTEN for a port whose last listening descriptor this process closed (only over a channel this
 * process opened: a process that never reported the listener has nothing to retract). Keeps errno. */
static void unlisten(uint16_t port)
{
	int saved = errno;
	if (ipc_is_open()) {
		uint8_t body[8], reply[16];
		size_t n = body_port(body, port);
		if (ipc_request(MSG_UNLISTEN, body, n, reply, sizeof reply, &n, NULL) < 0)
			shim_debug("UNLISTEN %u failed: %s", port, strerror(errno));
	}
	errno = saved;
}

int socket(int domain, int type, int protocol)
{
	int fd = REAL(socket)(domain, type, protocol);
	if (fd < 0 || !shim_enabled())
		return fd;
	int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
	if ((domain == AF_INET || domain == AF_INET6) && base == SOCK_STREAM &&
	    (protocol == 0 || protocol == IPPROTO_TCP)) {
		struct vsock v;
		memset(&v, 0, sizeof v);
		v.family = domain;
		fdt_new(fd, &v);
	} else {
		fdt_remove(fd, NULL); /* a stale record of a descriptor closed behind our back */
	}
	return fd;
}

int close(int fd)
{
	if (!shim_enabled())
		return REAL(close)(fd);
	struct vsock last;
	int was_last_listener = fdt_remove(fd, &last);
	int rc = REAL(close)(fd);
	if (was_last_listener)
		unlisten(last.listen_port);
	return rc;
}

int dup(int oldfd)
{
	int fd = REAL(dup)(oldfd);
	if (fd >= 0 && shim_enabled())
		fdt_dup(oldfd, fd);
	return fd;
}

/* dup2/dup3 close newfd first: retract its listener if it was the last one. */
static int dup_over(int oldfd, int newfd, int rc)
{
	if (rc < 0 || oldfd == newfd)
		return rc;
	struct vsock last;
	int was_last_listener = fdt_remove(newfd, &last);
	fdt_dup(oldfd, newfd);
	if (was_last_listener)
		unlisten(last.listen_port);
	return rc;
}

int dup2(int oldfd, int newfd)
{
	int rc = REAL(dup2)(oldfd, newfd);
	return shim_enabled() ? dup_over(oldfd, newfd, rc) : rc;
}

int dup3(int oldfd, int newfd, int flags)
{
	int rc = REAL(dup3)(oldfd, newfd, flags);
	return shim_enabled() ? dup_over(oldfd, newfd, rc) : rc;
}

/* fcntl is variadic; every command takes at most one argument, an int or a pointer: pass it on as a
 * pointer-sized value (the x86_64 and arm64 calling conventions make that exact). */
static int fcntl_common(int (*real)(int, int, ...), int fd, int cmd, void *arg)
{
	int rc = real(fd, cmd, arg);
	if (rc >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) && shim_enabled())
		fdt_dup(fd, rc);
	return rc;
}

int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	return fcntl_common(REAL(fcntl), fd, cmd, arg);
}

int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	return fcntl_common(REAL(fcntl64), fd, cmd, arg);
}

int close_range(unsigned int first, unsigned int last, int flags)
{
	__typeof__(&close_range) real = REAL(close_range);
	if (!real) {
		errno = ENOSYS;
		return -1;
	}
	int rc = real(first, last, flags);
	if (rc == 0 && !(flags & CLOSE_RANGE_CLOEXEC) && shim_enabled())
		fdt_remove_range(first, last, unlisten);
	return rc;
}

void closefrom(int lowfd)
{
	__typeof__(&closefrom) real = REAL(closefrom);
	if (real)
		real(lowfd);
	else if (lowfd >= 0)
		syscall(SYS_close_range, (unsigned)lowfd, ~0u, 0);
	if (lowfd >= 0 && shim_enabled())
		fdt_remove_range((unsigned)lowfd, ~0u, unlisten);
}

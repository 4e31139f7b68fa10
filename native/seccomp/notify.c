/* The helpers of notify.h: answers, memory access with the TOCTOU check, pidfd_getfd and ADDFD. */
#define _GNU_SOURCE
#include "notify.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "../shim/common/log.h"

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL /* Linux 6.9: a pidfd of one thread */
#endif

static void answer(const struct notif *n, int64_t val, int err, uint32_t flags)
{
	struct seccomp_notif_resp r = {.id = n->req.id, .val = val, .error = err ? -err : 0, .flags = flags};
	if (ioctl(n->lfd, SECCOMP_IOCTL_NOTIF_SEND, &r) < 0)
		shim_debug("seccomp: answer to syscall %d of %d lost: %s", n->req.data.nr, n->req.pid, strerror(errno));
}

void notif_continue(const struct notif *n)
{
	answer(n, 0, 0, SECCOMP_USER_NOTIF_FLAG_CONTINUE);
}

void notif_error(const struct notif *n, int err)
{
	answer(n, -1, err, 0);
}

void notif_value(const struct notif *n, int64_t val)
{
	answer(n, val, 0, 0);
}

void notif_done(const struct notif *n, int fd, int rc, int err)
{
	if (fd >= 0)
		close(fd);
	if (rc < 0)
		notif_error(n, err);
	else
		notif_value(n, 0);
}

int notif_valid(const struct notif *n)
{
	uint64_t id = n->req.id;
	return ioctl(n->lfd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

/* process_vm_readv/writev, or /proc/PID/mem where those are not allowed. */
static ssize_t mem_io(pid_t pid, uint64_t addr, void *buf, size_t len, int write)
{
	struct iovec local = {.iov_base = buf, .iov_len = len};
	struct iovec remote = {.iov_base = (void *)(uintptr_t)addr, .iov_len = len};
	ssize_t r = write ? process_vm_writev(pid, &local, 1, &remote, 1, 0) : process_vm_readv(pid, &local, 1, &remote, 1, 0);
	if (r >= 0 || (errno != ENOSYS && errno != EPERM))
		return r;
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/mem", pid);
	int fd = open(path, (write ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		return -1;
	r = write ? pwrite(fd, buf, len, (off_t)addr) : pread(fd, buf, len, (off_t)addr);
	close(fd);
	return r;
}

int notif_read(const struct notif *n, uint64_t addr, void *buf, size_t len)
{
	if (mem_io((pid_t)n->req.pid, addr, buf, len, 0) != (ssize_t)len) {
		errno = EFAULT;
		return -1;
	}
	if (!notif_valid(n)) { /* the thread left the call: the memory may be reused for something else */
		errno = ENOENT;
		return -1;
	}
	return 0;
}

int notif_write(const struct notif *n, uint64_t addr, const void *buf, size_t len)
{
	if (!notif_valid(n)) {
		errno = ENOENT;
		return -1;
	}
	if (mem_io((pid_t)n->req.pid, addr, (void *)buf, len, 1) != (ssize_t)len) {
		errno = EFAULT;
		return -1;
	}
	return 0;
}

int notif_read_sockaddr(const struct notif *n, uint64_t addr, uint64_t len, struct sockaddr_storage *ss,
			socklen_t *sl)
{
	memset(ss, 0, sizeof *ss);
	if ((int64_t)(int32_t)len < 0 || (uint32_t)len > sizeof *ss) {
		errno = EINVAL;
		return -1;
	}
	*sl = (socklen_t)len;
	return notif_read(n, addr, ss, *sl);
}

int notif_write_sockaddr(const struct notif *n, uint64_t addr, uint64_t lenp, const struct sockaddr_storage *ss,
			 socklen_t sl)
{
	if (!addr && !lenp)
		return 0;
	uint32_t cap;
	if (!addr || !lenp || notif_read(n, lenp, &cap, sizeof cap) < 0) {
		errno = EFAULT;
		return -1;
	}
	if ((int32_t)cap < 0) {
		errno = EINVAL;
		return -1;
	}
	size_t m = cap < sl ? cap : sl;
	if ((m && notif_write(n, addr, ss, m) < 0) || notif_write(n, lenp, &sl, sizeof sl) < 0) {
		errno = EFAULT;
		return -1;
	}
	return 0;
}

/* The process (thread group) of thread tid, from /proc (before Linux 6.9, pidfd_open takes only those). */
static pid_t tgid_of(pid_t tid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/status", tid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t r = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (r <= 0)
		return -1;
	buf[r] = 0;
	char *t = strstr(buf, "\nTgid:");
	return t ? (pid_t)atoi(t + 6) : -1;
}

int notif_getfd(const struct notif *n, int fd)
{
	pid_t tid = (pid_t)n->req.pid;
	int pfd = (int)syscall(SYS_pidfd_open, tid, PIDFD_THREAD);
	if (pfd < 0 && errno == EINVAL) {
		pid_t tgid = tgid_of(tid);
		pfd = tgid > 0 ? (int)syscall(SYS_pidfd_open, tgid, 0) : -1;
		if (tgid <= 0)
			errno = ESRCH;
	}
	if (pfd < 0)
		return -1;
	int r = (int)syscall(SYS_pidfd_getfd, pfd, fd, 0);
	int err = errno;
	close(pfd);
	errno = err;
	return r;
}

int notif_install(const struct notif *n, int src, int cloexec)
{
	static int no_send; /* Linux before 5.14: ADDFD without SEND */
	struct seccomp_notif_addfd a = {.id = n->req.id, .srcfd = (uint32_t)src, .newfd_flags = cloexec ? O_CLOEXEC : 0};
	if (!__atomic_load_n(&no_send, __ATOMIC_RELAXED)) {
		a.flags = SECCOMP_ADDFD_FLAG_SEND;
		int r = ioctl(n->lfd, SECCOMP_IOCTL_NOTIF_ADDFD, &a);
		if (r >= 0 || errno != EINVAL)
			return r;
		__atomic_store_n(&no_send, 1, __ATOMIC_RELAXED);
		a.flags = 0;
	}
	int r = ioctl(n->lfd, SECCOMP_IOCTL_NOTIF_ADDFD, &a);
	if (r >= 0)
		notif_value(n, r);
	return r;
}

int sock_is_tcp(int fd, int *family)
{
	int domain = 0, type = 0;
	socklen_t l1 = sizeof domain, l2 = sizeof type;
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &l1) < 0 || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l2) < 0)
		return 0;
	*family = domain;
	return type == SOCK_STREAM && (domain == AF_INET || domain == AF_INET6);
}

uint64_t sock_ino(int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISSOCK(st.st_mode))
		return 0;
	return (uint64_t)st.st_ino;
}

int notify_spawn(void *(*fn)(void *), void *arg)
{
	pthread_t t;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&at, 256 << 10);
	int rc = pthread_create(&t, &at, fn, arg);
	pthread_attr_destroy(&at);
	if (rc) {
		errno = rc;
		return -1;
	}
	return 0;
}

/* The filter (filter.h): a classic BPF program over struct seccomp_data. Other architectures than the one
 * built for (a 32-bit program on x86_64) and x32 calls are allowed untouched. Needs Linux 5.9 (user
 * notification with ADDFD); SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (5.19) is used where the kernel has it:
 * once the supervisor has taken a call, a signal no longer interrupts it, so a Go program's preemption
 * signals do not make accepted connections wait for the next accept. */
#define _GNU_SOURCE
#include "filter.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#if defined(__x86_64__)
#define FILTER_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define FILTER_ARCH AUDIT_ARCH_AARCH64
#else
#error "the seccomp filter knows x86_64 and aarch64"
#endif

#define LD_ARCH BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch))
#define LD_NR BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr))
/* The low 32 bits of argument i (little-endian). */
#define LD_ARG(i) BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[i]))
#define RET(v) BPF_STMT(BPF_RET | BPF_K, (v))
#define JEQ(k, t, f) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (k), (t), (f))

/* The kernel version as major * 100 + minor. */
static int kernel_version(void)
{
	struct utsname u;
	int a = 0, b = 0;
	if (uname(&u) < 0 || sscanf(u.release, "%d.%d", &a, &b) != 2)
		return 0;
	return a * 100 + b;
}

static char msg[256];

/* 0 where the filter may be installed; else -1 with errno ENOSYS and *why (turned off, or the kernel too old). */
static int available(const char **why)
{
	const char *force = getenv("BOXER_SECCOMP_UNAVAILABLE");
	if (force && strcmp(force, "1") == 0) {
		*why = "turned off with BOXER_SECCOMP_UNAVAILABLE=1";
		errno = ENOSYS;
		return -1;
	}
	int kv = kernel_version();
	if (kv && kv < 509) {
		snprintf(msg, sizeof msg, "the kernel is %d.%d; seccomp user notification with ADDFD needs Linux 5.9",
			 kv / 100, kv % 100);
		*why = msg;
		errno = ENOSYS;
		return -1;
	}
	return 0;
}

int filter_install(const char **why)
{
	if (available(why) < 0)
		return -1;
	struct sock_filter prog[] = {
		/* 0 */ LD_ARCH,
		/* 1 */ JEQ(FILTER_ARCH, 0, 20),
		/* 2 */ LD_NR,
#if defined(__x86_64__)
		/* 3 */ BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 18, 0), /* x32 */
#else
		/* 3 */ JEQ(0xffffffff, 18, 0),
#endif
		/* 4 */ JEQ(__NR_connect, 18, 0),
		/* 5 */ JEQ(__NR_bind, 17, 0),
		/* 6 */ JEQ(__NR_listen, 16, 0),
		/* 7 */ JEQ(__NR_accept, 15, 0),
		/* 8 */ JEQ(__NR_accept4, 14, 0),
		/* 9 */ JEQ(__NR_getsockname, 13, 0),
		/* 10 */ JEQ(__NR_getpeername, 12, 0),
		/* 11 */ JEQ(__NR_getsockopt, 2, 0),
		/* 12 */ JEQ(__NR_setsockopt, 5, 0),
		/* 13 */ RET(SECCOMP_RET_ALLOW),
		/* 14 getsockopt */ LD_ARG(1),
		/* 15 */ JEQ(SOL_SOCKET, 0, 6),
		/* 16 */ LD_ARG(2),
		/* 17 */ JEQ(SO_ERROR, 5, 4),
		/* 18 setsockopt */ LD_ARG(1),
		/* 19 */ JEQ(SOL_SOCKET, 0, 2),
		/* 20 */ LD_ARG(2),
		/* 21 */ JEQ(SO_KEEPALIVE, 1, 0),
		/* 22 */ RET(SECCOMP_RET_ALLOW),
		/* 23 */ RET(SECCOMP_RET_USER_NOTIF),
	};
	struct sock_fprog fp = {.len = sizeof prog / sizeof prog[0], .filter = prog};
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		snprintf(msg, sizeof msg, "prctl(PR_SET_NO_NEW_PRIVS) failed: %s", strerror(errno));
		*why = msg;
		return -1;
	}
	int fd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
			      SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, &fp);
	if (fd < 0 && errno == EINVAL)
		fd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &fp);
	if (fd < 0) {
		int err = errno;
		snprintf(msg, sizeof msg, "seccomp(SECCOMP_SET_MODE_FILTER, NEW_LISTENER) failed: %s (%s)", strerror(err),
			 err == EACCES || err == EPERM ? "the platform's own filter forbids it"
			 : err == EBUSY ? "another supervisor already listens"
					: "the kernel lacks it");
		*why = msg;
		errno = err;
		return -1;
	}
	return fd;
}

/* boxer-seccomp -- CMD [ARGS...]: runs CMD on the virtual network without the preload shim (Go programs,
 * static binaries: docs/seccomp.md). It forks; the child installs the filter (filter.c: no_new_privs, user
 * notification), passes the listener to the parent over a socketpair (SCM_RIGHTS) and execs CMD. The parent
 * is the supervisor: an ancestor of every process of the program (so pidfd_getfd and process_vm_readv are
 * allowed under Yama's ptrace_scope 1 too), it answers the trapped calls (one file per family), serves names
 * (dns.c), forwards SIGINT/SIGTERM/SIGHUP to CMD, and exits with CMD's status (128+N if killed by signal N)
 * once CMD has exited and no process of the program is left using the filter.
 * Where user notification is unavailable it says so on stderr, with what the program loses, and runs CMD
 * without it (with the preload shim given in BOXER_SHIM_FALLBACK, for the dynamically linked programs among
 * its processes). Settings: the shim's environment (BOXER_SHIM_SOCK, BOXER_NETWORK, BOXER_ADDR,
 * BOXER_NODES_FILE, BOXER_ROUTES_FILE, BOXER_SHIM_DEBUG=1). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../shim/common/config.h"
#include "../shim/common/frame.h"
#include "../shim/common/ipc.h"
#include "../shim/common/log.h"
#include "dns.h"
#include "filter.h"
#include "notify.h"

#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS /* Linux 6.6; headers may be older than the kernel */
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif

/* How often closed listeners are looked for (listen.c). */
#define SWEEP_MS 1000

static int send_fd(int sock, int fd, int err)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = &err, .iov_len = sizeof err};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
	if (fd >= 0) {
		memset(cbuf, 0, sizeof cbuf);
		m.msg_control = cbuf;
		m.msg_controllen = sizeof cbuf;
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof fd);
	}
	return sendmsg(sock, &m, MSG_NOSIGNAL) < 0 ? -1 : 0;
}

/* Returns the descriptor, or -1 with *why (the child's message) when the filter could not be installed. */
static int recv_fd(int sock, char *why, size_t cap)
{
	char buf[512];
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf - 1};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
	ssize_t r = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
	if (r <= 0) {
		snprintf(why, cap, "the program's process ended before installing the filter");
		return -1;
	}
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	if (c && c->cmsg_type == SCM_RIGHTS) {
		int fd;
		memcpy(&fd, CMSG_DATA(c), sizeof fd);
		return fd;
	}
	buf[r] = 0;
	snprintf(why, cap, "%s", buf);
	return -1;
}

static void child(int sock, char **cmd, const sigset_t *old)
{
	const char *why = NULL;
	int lfd = shim_cfg.enabled ? filter_install(&why) : -1;
	if (lfd >= 0) {
		send_fd(sock, lfd, 0);
		close(lfd);
	} else if (why) {
		(void)!write(sock, why, strlen(why));
	} else {
		(void)!write(sock, "no agent (BOXER_SHIM_SOCK unset)", 32);
	}
	/* Wait until the parent has the listener (it closes its end then), so the first trapped call finds it. */
	char c;
	(void)!read(sock, &c, 1);
	close(sock);
	sigprocmask(SIG_SETMASK, old, NULL);
	/* Without the filter, programs that load the shim still get the network through it. */
	const char *shim = getenv("BOXER_SHIM_FALLBACK");
	if (lfd < 0 && shim && *shim) {
		const char *pre = getenv("LD_PRELOAD");
		char *v = NULL;
		if (asprintf(&v, "%s%s%s", shim, pre && *pre ? " " : "", pre && *pre ? pre : "") > 0)
			setenv("LD_PRELOAD", v, 1);
	}
	unsetenv("BOXER_SHIM_FALLBACK");
	execvp(cmd[0], cmd);
	fprintf(stderr, "boxer: cannot start %s: %s\n", cmd[0], errno == ENOENT ? "no such command (check PATH)" : strerror(errno));
	_exit(127);
}

static void dispatch(int lfd)
{
	struct notif n = {.lfd = lfd};
	memset(&n.req, 0, sizeof n.req);
	if (ioctl(lfd, SECCOMP_IOCTL_NOTIF_RECV, &n.req) < 0)
		return; /* ENOENT: the caller left before we read it */
	switch (n.req.data.nr) {
	case __NR_connect: on_connect(&n); break;
	case __NR_bind: on_bind(&n); break;
	case __NR_listen: on_listen(&n); break;
	case __NR_accept: on_accept(&n, 0); break;
	case __NR_accept4: on_accept(&n, 1); break;
	case __NR_getsockname: on_getsockname(&n); break;
	case __NR_getpeername: on_getpeername(&n); break;
	case __NR_getsockopt: on_getsockopt(&n); break;
	case __NR_setsockopt: on_setsockopt(&n); break;
	default: notif_continue(&n);
	}
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Serves until the program's main process has exited and the filter has no process left. Returns the exit
 * status. */
static int supervise(int lfd, pid_t pid, int sfd)
{
	int dfd = lfd >= 0 ? dns_init() : -1;
	if (lfd >= 0 && dfd < 0)
		shim_log("seccomp: no name server (%s): member names do not resolve for this program", strerror(errno));
	int status = -1, hup = lfd < 0;
	int64_t next_sweep = now_ms() + SWEEP_MS;
	while (status < 0 || !hup) {
		struct pollfd p[3] = {{.fd = sfd, .events = POLLIN}, {.fd = hup ? -1 : lfd, .events = POLLIN}, {.fd = dfd, .events = POLLIN}};
		int64_t left = next_sweep - now_ms();
		int r = poll(p, 3, left < 0 ? 0 : (int)left);
		if (r < 0 && errno != EINTR)
			break;
		if (p[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			while (read(sfd, &si, sizeof si) == sizeof si) {
				if (si.ssi_signo != SIGCHLD) {
					kill(pid, (int)si.ssi_signo);
					continue;
				}
			}
			int ws;
			pid_t w;
			while ((w = waitpid(-1, &ws, WNOHANG)) > 0)
				if (w == pid)
					status = WIFSIGNALED(ws) ? 128 + WTERMSIG(ws) : WEXITSTATUS(ws);
		}
		if (p[1].revents & POLLIN)
			dispatch(lfd);
		else if (p[1].revents & (POLLHUP | POLLERR | POLLNVAL))
			hup = 1; /* no process uses the filter any more */
		if (dfd >= 0 && (p[2].revents & POLLIN))
			dns_serve();
		if (now_ms() >= next_sweep) {
			if (!hup)
				listen_sweep();
			next_sweep = now_ms() + SWEEP_MS;
		}
	}
	return status < 0 ? 1 : status;
}

int main(int argc, char **argv)
{
	int i = 1;
	if (i < argc && strcmp(argv[i], "--") == 0)
		i++;
	if (i >= argc) {
		fprintf(stderr, "usage: boxer-seccomp -- CMD [ARGS...]: runs CMD on Boxer's virtual network through a seccomp filter "
				"(started by `boxer run`, which sets BOXER_SHIM_SOCK and the rest)\n");
		return 2;
	}
	char **cmd = argv + i;
	shim_init();
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		perror("boxer-seccomp: socketpair");
		return 1;
	}
	sigset_t mask, old;
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, &old);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	pid_t pid = fork();
	if (pid < 0) {
		perror("boxer-seccomp: fork");
		return 1;
	}
	if (pid == 0) {
		close(sv[0]);
		child(sv[1], cmd, &old);
	}
	close(sv[1]);
	char why[512];
	int lfd = recv_fd(sv[0], why, sizeof why);
	close(sv[0]); /* lets the child exec */
	if (lfd < 0 && shim_cfg.enabled) {
		fprintf(stderr,
			"boxer: seccomp user notification is not available here (%s): %s runs WITHOUT the virtual network "
			"(it cannot reach members' virtual addresses, its listeners are not reachable from members, and "
			"member names do not resolve)%s\n",
			why, cmd[0],
			getenv("BOXER_SHIM_FALLBACK") ? "; dynamically linked programs it starts (not Go) get the preload shim instead" : "");
	}
	if (lfd >= 0) {
		/* Linux 6.6: the trapped thread hands its CPU straight to the supervisor and back (no scheduler round
		 * trip per call); older kernels refuse the flag, and calls take the ordinary wake-ups. */
		if (ioctl(lfd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP) < 0)
			shim_debug("seccomp: no synchronous wake-ups (%s)", strerror(errno));
		uint8_t body[FRAME_MAX], reply[64];
		char *name = basename(cmd[0]);
		size_t n = body_hello(body, (uint32_t)pid, name), rn;
		if (ipc_request(MSG_HELLO, body, n, reply, sizeof reply, &rn, NULL) < 0)
			shim_debug("seccomp: HELLO failed: %s", strerror(errno));
		shim_debug("seccomp: supervising %s (pid %d)", cmd[0], pid);
	}
	return supervise(lfd, pid, sfd);
}

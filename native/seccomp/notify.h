/* The seccomp supervisor's view of one trapped system call (a seccomp user notification) and the helpers the
 * per-call handlers share: reading and writing the program's memory (each read checked against the
 * notification still being valid: SECCOMP_IOCTL_NOTIF_ID_VALID, against TOCTOU), taking a copy of one of the
 * program's descriptors (pidfd_getfd: the same open socket), installing a descriptor into it
 * (SECCOMP_IOCTL_NOTIF_ADDFD), and answering. Every handler answers exactly once: continue (the kernel runs
 * the call as asked), an errno, a value, or an installed descriptor. */
#pragma once
#include <linux/seccomp.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

struct notif {
	int lfd;                    /* the seccomp listener */
	struct seccomp_notif req;   /* id, pid (the thread), data.nr, data.args */
};

/* Answers: the kernel performs the call itself (SECCOMP_USER_NOTIF_FLAG_CONTINUE: the arguments are read
 * again by the kernel, so this is only for calls left untouched); an error (errno > 0); a value. A failed
 * answer (the program's thread was interrupted or died) is only logged. */
void notif_continue(const struct notif *n);
void notif_error(const struct notif *n, int err);
void notif_value(const struct notif *n, int64_t val);
/* Closes our copy fd (when >= 0), then answers: rc < 0 -> the errno err, else 0. */
void notif_done(const struct notif *n, int fd, int rc, int err);
/* 1 while the program's thread still waits in this call. */
int notif_valid(const struct notif *n);

/* Reads len bytes at addr of the program's memory; then checks the notification is still valid (the bytes
 * belong to this call). Returns 0, or -1 with errno (EFAULT, or ENOENT if the call is gone). */
int notif_read(const struct notif *n, uint64_t addr, void *buf, size_t len);
/* Writes len bytes at addr of the program's memory (after checking the call still waits). Returns 0 or -1. */
int notif_write(const struct notif *n, uint64_t addr, const void *buf, size_t len);
/* Reads a sockaddr argument (at most sizeof(struct sockaddr_storage) bytes). Returns 0 or -1 with errno. */
int notif_read_sockaddr(const struct notif *n, uint64_t addr, uint64_t len, struct sockaddr_storage *ss,
			socklen_t *sl);
/* Writes a sockaddr to the program's (addr, addrlen) pair the way the kernel does: at most *addrlen bytes,
 * then *addrlen = sl. addr 0 with addrlen 0 writes nothing. Returns 0, or -1 with errno (EFAULT). */
int notif_write_sockaddr(const struct notif *n, uint64_t addr, uint64_t lenp, const struct sockaddr_storage *ss,
			 socklen_t sl);

/* A copy of the program's descriptor fd (pidfd_getfd: the same open file; O_CLOEXEC here). Returns it, or
 * -1 with errno (EBADF: no such descriptor; ESRCH: the process is gone). */
int notif_getfd(const struct notif *n, int fd);
/* Installs our descriptor src into the program as the call's return value (SECCOMP_ADDFD_FLAG_SEND: the
 * descriptor appears and the call returns its number atomically; before Linux 5.14: ADDFD, then the answer).
 * cloexec: O_CLOEXEC on the program's descriptor. Returns the program's descriptor number, or -1 with errno
 * (ENOENT: the call is gone, nothing was installed). */
int notif_install(const struct notif *n, int src, int cloexec);

/* 1 if the socket fd is a TCP socket (AF_INET/AF_INET6, SOCK_STREAM); *family gets its family. */
int sock_is_tcp(int fd, int *family);
/* The socket's inode (the key of the supervisor's socket table), or 0. */
uint64_t sock_ino(int fd);

/* The handlers (one file each). Each answers n; blocking work runs on a thread of its own (notify_spawn). */
void on_connect(struct notif *n);
void on_bind(struct notif *n);
void on_listen(struct notif *n);
void on_accept(struct notif *n, int flags_arg);
void on_getsockname(struct notif *n);
void on_getpeername(struct notif *n);
void on_getsockopt(struct notif *n);
void on_setsockopt(struct notif *n);

/* Runs fn(arg) on a detached thread (a blocking connect or accept must not stall the other calls). Returns 0,
 * or -1 with errno. */
int notify_spawn(void *(*fn)(void *), void *arg);

/* Checks every listener the program reported: one no longer in the kernel's table (closed) is retracted with
 * UNLISTEN (listen.c). Called about once a second. */
void listen_sweep(void);

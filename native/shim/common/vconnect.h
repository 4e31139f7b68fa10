/* The connect() decision of the virtual network, shared by the preload shim (shim/connect.c, sockopt.c) and
 * the seccomp supervisor (seccomp/connect.c, sockopt.c), so both paths run the same code: one route table,
 * one broker. Each function works on a descriptor of the program's socket (the shim's own, or the
 * supervisor's copy of it from pidfd_getfd: the same open socket) and on the socket's record, which the
 * caller stores (the shim's fd table, the supervisor's socket table). */
#pragma once
#include <stdint.h>

#include "fdtable.h"

enum vconnect_plan {
	VCONNECT_REMOTE = 1, /* connect v->real_ip:real_port (v filled: VS_PENDING, conn_id, peer, local) */
	VCONNECT_SELF = 2,   /* loopback to this member (v filled: VS_DONE) */
};

/* Decides where a connect to ip:port (a virtual address other than the member's own, or its own) goes: for
 * another member, binds the socket if unbound (so the local port is known before the SYN), then the route
 * table (CONNECTING, no wait) or the agent (CONNECT, one round trip). Fills *v. Returns a vconnect_plan, or
 * -1 with errno to fail the call (EHOSTUNREACH, ECONNREFUSED, ENETUNREACH, EADDRINUSE...). */
int vconnect_prepare(int fd, struct vsock *v, uint32_t ip, uint16_t port, int nonblock);

/* The kernel connect of the program's socket to where *v says (v->real_ip:real_port, in v->family).
 * Returns connect(2)'s result with errno. */
int vconnect_kernel(int fd, const struct vsock *v);

/* After the kernel connect of a VCONNECT_REMOTE plan returned rc (errno err): the result the program sees
 * (docs/shim.md, "connect sequence"). Updates v->state; the caller stores *v again. Returns 0, or -1 with
 * errno. */
int vconnect_finish(int fd, struct vsock *v, int rc, int err, int nonblock);

/* getsockopt(SO_ERROR) on a socket whose virtual connect is pending (v->state == VS_PENDING): the kernel's
 * error, or the agent's virtual outcome once the kernel's connect ended. Sets *changed when v moved to
 * VS_DONE (the caller stores it). Returns 0 with *err, or -1 with errno (the kernel's getsockopt failed). */
int vconnect_so_error(int fd, struct vsock *v, int *err, int *changed);

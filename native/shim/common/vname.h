/* The virtual addresses of a socket, shared by the preload shim (shim/bind.c, listen.c, getname.c) and the
 * seccomp supervisor (seccomp/bind.c, listen.c, getname.c): where a bind to a virtual address really binds,
 * whether a listener is reachable from the virtual network, and the names getsockname()/getpeername() show. */
#pragma once
#include <stdint.h>
#include <sys/socket.h>

#include "fdtable.h"

enum vbind_plan {
	VBIND_NATIVE = 0,  /* not a virtual address: bind as asked */
	VBIND_VIRTUAL = 1, /* the member's own virtual address: bind *ss (the wildcard, same port) instead */
};

/* Where bind(addr) really binds. Returns a vbind_plan (VBIND_VIRTUAL fills *ss, *sl), or -1 with errno
 * (EADDRNOTAVAIL: another member's address, not ours, as natively). */
int vbind_plan(const struct sockaddr *addr, socklen_t len, struct sockaddr_storage *ss, socklen_t *sl);

/* Marks *v bound to the member's virtual address (after a VBIND_VIRTUAL bind succeeded). */
void vbind_record(struct vsock *v);

/* 1 if the socket fd (record *v) listens where the virtual network reaches it (its own virtual address, 0.0.0.0
 * or ::), with its port; else 0. */
int vlisten_reachable(int fd, const struct vsock *v, uint16_t *port);

/* Marks *v listening (with its port) if it is not yet and the virtual network reaches it. Returns 1 if so
 * (the caller stores *v, then vlisten_report), else 0. */
int vlisten_mark(int fd, struct vsock *v);
/* LISTEN to the agent for port (which refuses connects to closed ports); failures only logged (debug): the
 * listen itself is the kernel's, and the port is re-reported when the channel reopens. Keeps errno. */
void vlisten_report(uint16_t port);

/* The virtual name of the socket's local end (v->has_local) or far end (v->has_peer), in the family the
 * program sees. Return its length. */
socklen_t vname_local(int fd, const struct vsock *v, struct sockaddr_storage *ss);
socklen_t vname_peer(const struct vsock *v, struct sockaddr_storage *ss);

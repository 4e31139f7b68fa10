/* The shim's bookkeeping of TCP sockets (AF_INET/AF_INET6 SOCK_STREAM): per descriptor, a pointer to a
 * reference-counted record shared by every descriptor of the same open socket (dup, dup2, dup3, F_DUPFD), as
 * the virtual addresses and connect state belong to the socket, not to the number. Thread-safe (one mutex,
 * re-initialized in a fork child). No system calls: unit-tested in native/test/test_fdtable.c. */
#pragma once
#include <stdint.h>

enum vsock_state {
	VS_NONE = 0,      /* no virtual connect */
	VS_PENDING,       /* virtual connect started; outcome not yet reported to the program */
	VS_DONE,          /* outcome reported (or connected at once) */
};

struct vsock {
	int family;              /* what the program sees: AF_INET or AF_INET6 (v4-mapped) */
	uint8_t user_keepalive;  /* the program set SO_KEEPALIVE itself */
	uint8_t bound_virtual;   /* bound to the member's virtual address (real socket bound to any) */
	uint8_t listening;       /* listening on a port the virtual network reaches (LISTEN sent) */
	uint8_t has_local;       /* vlocal valid */
	uint8_t has_peer;        /* vpeer valid */
	uint8_t state;           /* enum vsock_state */
	uint8_t direct;          /* connecting over a `direct` route: the kernel's outcome is the virtual one */
	uint16_t listen_port;
	uint32_t vlocal_ip;      /* host order */
	uint16_t vlocal_port;    /* 0: the socket's real local port */
	uint32_t vpeer_ip;
	uint16_t vpeer_port;
	uint64_t conn_id;        /* CONNECT's id while state == VS_PENDING */
	uint32_t real_ip;        /* where the socket really connects (repeated connect() calls go there) */
	uint16_t real_port;
	/* private */
	int refs;
};

/* Starts tracking fd with a fresh record (a new socket); any record fd had is released. */
int fdt_new(int fd, const struct vsock *v);
/* Copies fd's record into *out. Returns 1 if fd is tracked, 0 if not. */
int fdt_get(int fd, struct vsock *out);
/* Replaces the contents of fd's record (seen by every dup of it). Returns 0, or -1 if fd is not tracked. */
int fdt_set(int fd, const struct vsock *v);
/* newfd now shares oldfd's record (or is untracked if oldfd is); newfd's previous record is released. */
void fdt_dup(int oldfd, int newfd);
/* Stops tracking fd. Returns 1 and copies the record into *last if fd held the last reference to a
 * listening record (the caller sends UNLISTEN), else 0. last may be NULL. */
int fdt_remove(int fd, struct vsock *last);
/* fdt_remove for every fd in [lo, hi]; calls on_last(port) for each listening record released. */
void fdt_remove_range(unsigned lo, unsigned hi, void (*on_last)(uint16_t port));
/* Collects up to max listening ports (distinct records) into ports. Returns how many. */
int fdt_listening_ports(uint16_t *ports, int max);
/* Drops everything (tests). */
void fdt_reset(void);
/* pthread_atfork hooks: hold the lock across fork, re-initialize it in the child. */
void fdt_atfork_prepare(void);
void fdt_atfork_parent(void);
void fdt_atfork_child(void);

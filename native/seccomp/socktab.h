/* The supervisor's records of the program's sockets (struct vsock, the shim's record), keyed by the socket's
 * inode: the program's descriptor numbers change behind the supervisor's back (dup, close and fork are not
 * trapped), the socket's inode does not. Thread-safe (one mutex). Bounded: SOCKTAB_MAX records; when it is
 * full, the records of closed sockets are dropped (sockets still open in any of the program's processes are
 * kept, found by their inodes in /proc/PID/fd). */
#pragma once
#include <stdint.h>

#include "../shim/common/fdtable.h"

/* Records at most (a few MiB); connected sockets whose names the program asks for again much later than the
 * table filled show their real addresses if the table had to drop records of open sockets (never observed:
 * the sweep keeps open ones). */
#define SOCKTAB_MAX 65536

/* Copies the record of socket ino into *v. Returns 1, or 0 if there is none. */
int socktab_get(uint64_t ino, struct vsock *v);
/* The record of socket ino into *v, or a fresh one of that family (not stored yet). */
void socktab_get_or_new(uint64_t ino, int family, struct vsock *v);
/* Stores the record of socket ino (a new one, or replacing the old). */
void socktab_put(uint64_t ino, const struct vsock *v);
/* Drops the record of socket ino. */
void socktab_del(uint64_t ino);
/* Calls fn(ino, v, ctx) for every listening record (listen.c's sweep); fn returns 1 to drop the record. */
void socktab_each_listener(int (*fn)(uint64_t ino, const struct vsock *v, void *ctx), void *ctx);

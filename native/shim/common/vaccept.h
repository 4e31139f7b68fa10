/* Naming an accepted connection of the virtual network, shared by the preload shim (shim/accept.c) and the
 * seccomp supervisor (seccomp/accept.c): who a connection the kernel's accept returned on a virtual listener
 * is from, and which real socket the program must get (the agent may hand in the punched or relayed one). */
#pragma once
#include <stdint.h>

#include "fdtable.h"

enum vaccept_kind {
	VACCEPT_NATIVE = 0, /* not from the virtual network (or the agent could not be asked): untouched */
	VACCEPT_SELF = 1,   /* a self-connect of this member (from 127.66.0.1) */
	VACCEPT_MEMBER = 2, /* from a member: named, keepalive applies (vaccept_options) */
};

/* Names the connection nfd (peer pip:pport, host order) accepted on the listener lfd (record *lv) into *nv:
 * from the self-connect marker, from the route table (a `direct` member), else ACCEPTED to the agent. *handed
 * gets the real socket the agent passed (the caller puts it in nfd's place and closes it), or -1. Returns a
 * vaccept_kind. */
int vaccept_name(int lfd, const struct vsock *lv, int nfd, uint32_t pip, uint16_t pport, struct vsock *nv,
		 int *handed);

/* For a VACCEPT_MEMBER connection, now at descriptor fd: a handed socket takes the accept4 flags' O_NONBLOCK
 * and the options a native accept inherits from the listener (TCP_NODELAY, SO_KEEPALIVE and its timers,
 * SO_LINGER); then the overlay keepalive unless the program chose its own. Keeps errno. */
void vaccept_options(int lfd, const struct vsock *lv, int fd, int flags, int handed);

/* The seccomp filter `boxer run` installs in a program that does not load the shim: it traps (user
 * notification) only connect, bind, listen, accept, accept4, getsockname, getpeername,
 * getsockopt(SOL_SOCKET, SO_ERROR) and setsockopt(SOL_SOCKET, SO_KEEPALIVE); every other call (read, write,
 * send, recv, close...) runs at native cost. */
#pragma once

/* Sets no_new_privs and installs the filter in the calling thread (inherited across fork and exec). Returns
 * the notification listener, or -1 with *why set to a sentence saying why user notification is not
 * available here (and errno). BOXER_SECCOMP_UNAVAILABLE=1 in the environment makes it fail as an old kernel
 * would (tests of the fallback path). */
int filter_install(const char **why);

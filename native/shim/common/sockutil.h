/* Helpers shared by the wrappers. */
#pragma once
#include <stdint.h>
#include <sys/socket.h>

#include "fdtable.h"

/* TCP keepalive on overlay connections, so that NATs that drop idle flows keep them: AWS NAT gateways drop
 * TCP flows idle for 350 s, some home routers after 30-60 s; the first probe goes out after 20 s idle, inside
 * those. A NAT that restarted (forgot every mapping) passes the far end's packets again once our next probe
 * has gone out: so a connection idle on our side stalls at most about twice this (the far end's retransmit
 * backoff) instead of minutes (docs/security.md, the conntrack -F test). A dead peer is detected after
 * 20 + 3 x 5 = 35 s. One probe per 20 s per idle connection. Not applied when the program set SO_KEEPALIVE. */
#define SHIM_KEEPALIVE_IDLE_S 20
#define SHIM_KEEPALIVE_INTVL_S 5
#define SHIM_KEEPALIVE_CNT 3

/* How long a blocking connect() lets the agent take to report the outcome (CONNECT_RESULT wait_ms) once the
 * kernel's connect returned: none. The outcome is known by then: a relayed connect's CONNECT waited for it, and
 * a punched connection's far side says "refused" REFUSE_NOTICE_MS (src/constants/vnet.ts) before it completes the
 * handshake; a success needs no word (the kernel's connect completed). Waiting would hold the channel's lock
 * across the far side's answer and cost every connect the far agent's hand-off. */
#define SHIM_CONNECT_RESULT_WAIT_MS 0

/* Gets fd's record; an untracked descriptor that is an AF_INET/AF_INET6 stream socket (inherited over
 * exec, received with SCM_RIGHTS) starts being tracked here. Returns 1 with *v filled, 0 if fd is not a
 * TCP socket (or not a socket). Keeps errno. */
int shim_track(int fd, struct vsock *v);

/* Turns on the overlay keepalive (best effort; keeps errno). */
void shim_keepalive(int fd);

/* Arms the keepalive timer of a socket that just got connected. Linux arms it when an active open completes
 * (tcp_finish_connect), but not after a simultaneous open (SYN_SENT -> SYN_RECV -> ESTABLISHED), which is how
 * punched connections come up: setting TCP_KEEPIDLE again on the established socket arms it. Keeps errno. */
void shim_keepalive_arm(int fd);

/* Random ports tried by connect() before binding port 0 (connect.c, ensure_bound). */
#define SHIM_BIND_PROBES 16

/* The kernel's ephemeral port range (net.ipv4.ip_local_port_range, read once; 32768-60999 if unreadable). */
void shim_port_range(uint16_t *lo, uint16_t *hi);

/* The socket's real local port (0 if unbound or on error). Keeps errno. */
uint16_t shim_real_port(int fd);

/* pthread_atfork registration of every lock of the shim (called once at load). */
void shim_register_atfork(void);

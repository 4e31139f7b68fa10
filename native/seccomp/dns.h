/* Names for programs that resolve by themselves (Go's pure resolver, static binaries): the supervisor runs a
 * small DNS server on 127.0.0.1 (UDP), and a program's UDP connect() to a name server (port 53) is pointed at
 * it. It answers member names (from the member file, as the shim's getaddrinfo does: `fn3`, `fn3.boxer`, and
 * `fn3.<search domain of resolv.conf>`) and service names (RESOLVE to the agent) with A records, and AAAA
 * queries for them with no records (the virtual network is IPv4); every other query is forwarded to the name
 * server the program asked for, and the answer relayed. No root, no file of the program's changed. */
#pragma once
#include <stdint.h>
#include <sys/socket.h>

#include "notify.h"

#define DNS_PORT 53
/* Bound on a forwarded query's wait for the upstream answer (then SERVFAIL; resolvers retry). */
#define DNS_FORWARD_TIMEOUT_MS 3000
/* Forwarded queries at once (each waits on a thread of its own); beyond, SERVFAIL. */
#define DNS_FORWARD_MAX 32

/* Opens the server socket and reads /etc/resolv.conf's search domains. Returns its descriptor (to poll), or
 * -1 with errno (names of the virtual network then do not resolve for such programs; logged). */
int dns_init(void);
/* Answers the datagrams waiting on the server socket (non-blocking). */
void dns_serve(void);
/* A connect(2) to ss (a name server: port 53): for a UDP socket, connects the program's socket to the
 * supervisor's server instead and answers n; returns 1. Returns 0 (n not answered) for anything else. */
int dns_redirect(struct notif *n, int fd, const struct sockaddr_storage *ss, socklen_t sl);
/* 1 if ss is a native IPv6 address at port 53 (a name server such as ::1). */
int dns_is_v6_nameserver(const struct sockaddr_storage *ss, socklen_t sl);

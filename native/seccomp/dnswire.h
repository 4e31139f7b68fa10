/* DNS messages of the supervisor's name server (dns.c): parsing a query and building its answer. Pure
 * functions, unit-tested in native/test/test_dns.c. */
#pragma once
#include <stddef.h>
#include <stdint.h>

/* TTL of the answers: members come and go, resolvers must not keep an answer long. */
#define DNS_TTL_S 5

/* Parses a query (one question); writes the question's name (lowercase, no trailing dot) into name (cap
 * bytes), its type, and the question's length in bytes after the 12-byte header. Returns 0, or -1 if it is
 * not a standard query with one question (a response, another opcode, truncated or malformed). */
int dns_parse_query(const uint8_t *q, size_t n, char *name, size_t cap, uint16_t *qtype, size_t *qlen);
/* Builds the answer to query q (its question qlen bytes) with count A records (host-order addresses; count
 * 0: no records) and rcode (0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN). Returns its length, or 0 if it does not fit in
 * cap. */
size_t dns_build_answer(const uint8_t *q, size_t qlen, const uint32_t *addrs, int count, int rcode, uint8_t *out,
			size_t cap);

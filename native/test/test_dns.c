/* Unit tests of the supervisor's DNS messages (seccomp/dnswire.c): parsing queries (case folded, type,
 * question length; responses, other opcodes, several questions and truncated names refused) and answers
 * (header bits, the question echoed, A records pointing at the question's name, no records, rcodes, size). */
#include <string.h>

#include "check.h"
#include "dnswire.h"

/* A query for name (dotted) of type qtype, id 0x1234, RD set. Returns its length. */
static size_t query(uint8_t *q, const char *name, uint16_t qtype)
{
	uint8_t h[12] = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0};
	memcpy(q, h, 12);
	size_t o = 12;
	const char *p = name;
	while (*p) {
		const char *dot = strchr(p, '.');
		size_t l = dot ? (size_t)(dot - p) : strlen(p);
		q[o++] = (uint8_t)l;
		memcpy(q + o, p, l);
		o += l;
		p += l + (dot ? 1 : 0);
	}
	q[o++] = 0;
	q[o++] = (uint8_t)(qtype >> 8), q[o++] = (uint8_t)qtype;
	q[o++] = 0, q[o++] = 1;
	return o;
}

int main(void)
{
	uint8_t q[512], a[512];
	char name[256];
	uint16_t qtype;
	size_t qlen;
	size_t n = query(q, "Fn3.Boxer", 1);
	CHECK(dns_parse_query(q, n, name, sizeof name, &qtype, &qlen) == 0);
	CHECK(strcmp(name, "fn3.boxer") == 0);
	CHECK(qtype == 1);
	CHECK(qlen == n - 12);

	uint32_t addrs[2] = {0x64600005, 0x64600006};
	size_t al = dns_build_answer(q, qlen, addrs, 2, 0, a, sizeof a);
	CHECK(al == n + 32);
	CHECK(a[0] == 0x12 && a[1] == 0x34);          /* id kept */
	CHECK((a[2] & 0x80) && (a[2] & 0x01));         /* QR, RD copied */
	CHECK((a[3] & 0x0f) == 0);                     /* NOERROR */
	CHECK(a[5] == 1 && a[7] == 2 && a[9] == 0 && a[11] == 0);
	CHECK(memcmp(a + 12, q + 12, qlen) == 0);      /* the question echoed */
	CHECK(a[n] == 0xc0 && a[n + 1] == 12);         /* the name: pointer to the question */
	CHECK(a[n + 3] == 1 && a[n + 5] == 1);         /* A, IN */
	CHECK(a[n + 9] == DNS_TTL_S && a[n + 11] == 4);
	CHECK(a[n + 12] == 100 && a[n + 13] == 96 && a[n + 14] == 0 && a[n + 15] == 5);
	CHECK(a[n + 16 + 15] == 6);

	n = query(q, "fn3", 28); /* AAAA: no records */
	CHECK(dns_parse_query(q, n, name, sizeof name, &qtype, &qlen) == 0 && qtype == 28 && !strcmp(name, "fn3"));
	al = dns_build_answer(q, qlen, NULL, 0, 0, a, sizeof a);
	CHECK(al == n && a[7] == 0 && (a[3] & 0x0f) == 0);
	al = dns_build_answer(q, qlen, NULL, 0, 2, a, sizeof a);
	CHECK(al == n && (a[3] & 0x0f) == 2); /* SERVFAIL */
	CHECK(dns_build_answer(q, qlen, addrs, 2, 0, a, n + 31) == 0); /* does not fit */

	uint8_t bad[512];
	n = query(bad, "x.y", 1);
	bad[2] |= 0x80; /* a response */
	CHECK(dns_parse_query(bad, n, name, sizeof name, &qtype, &qlen) < 0);
	n = query(bad, "x.y", 1);
	bad[2] |= 0x10; /* opcode 2 */
	CHECK(dns_parse_query(bad, n, name, sizeof name, &qtype, &qlen) < 0);
	n = query(bad, "x.y", 1);
	bad[5] = 2; /* two questions */
	CHECK(dns_parse_query(bad, n, name, sizeof name, &qtype, &qlen) < 0);
	n = query(bad, "abcdef", 1);
	CHECK(dns_parse_query(bad, 15, name, sizeof name, &qtype, &qlen) < 0); /* truncated */
	CHECK(dns_parse_query(bad, n, name, 4, &qtype, &qlen) < 0);            /* name too long for the buffer */
	CHECK(dns_parse_query(bad, 11, name, sizeof name, &qtype, &qlen) < 0);
	return check_done("test_dns");
}

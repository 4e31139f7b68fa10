/* DNS query parsing and answers (dnswire.h). */
#include "dnswire.h"

#include <arpa/inet.h>
#include <string.h>

int dns_parse_query(const uint8_t *q, size_t n, char *name, size_t cap, uint16_t *qtype, size_t *qlen)
{
	if (n < 12 || (q[2] & 0x80) || (q[2] & 0x78) || q[4] != 0 || q[5] != 1)
		return -1; /* a response, not opcode QUERY, or not one question */
	size_t i = 12, o = 0;
	while (i < n && q[i]) {
		size_t l = q[i++];
		if (l > 63 || i + l > n || o + l + 1 >= cap)
			return -1;
		if (o)
			name[o++] = '.';
		for (size_t k = 0; k < l; k++) {
			char c = (char)q[i + k];
			name[o++] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
		}
		i += l;
	}
	if (i + 5 > n)
		return -1;
	name[o] = 0;
	i++;
	*qtype = (uint16_t)(q[i] << 8 | q[i + 1]);
	*qlen = i + 4 - 12;
	return 0;
}

size_t dns_build_answer(const uint8_t *q, size_t qlen, const uint32_t *addrs, int count, int rcode, uint8_t *out,
			size_t cap)
{
	size_t len = 12 + qlen + (size_t)count * 16;
	if (len > cap)
		return 0;
	memcpy(out, q, 12 + qlen);
	out[2] = (uint8_t)(0x80 | (q[2] & 0x01) | 0x04); /* QR, RD copied, AA */
	out[3] = (uint8_t)(0x80 | (rcode & 0x0f));        /* RA */
	out[6] = 0, out[7] = (uint8_t)count;             /* answers */
	memset(out + 8, 0, 4);                           /* no authority, no additional (EDNS dropped) */
	uint8_t *p = out + 12 + qlen;
	for (int k = 0; k < count; k++, p += 16) {
		p[0] = 0xc0, p[1] = 12;           /* the name: a pointer to the question's */
		p[2] = 0, p[3] = 1, p[4] = 0, p[5] = 1; /* A, IN */
		p[6] = 0, p[7] = 0, p[8] = 0, p[9] = DNS_TTL_S;
		p[10] = 0, p[11] = 4;
		uint32_t a = htonl(addrs[k]);
		memcpy(p + 12, &a, 4);
	}
	return len;
}


/* libFuzzer target: the seccomp supervisor's DNS parser and answer builder (native/seccomp/dnswire.c). Its
 * input is a query the supervised program sent (untrusted): parsing any bytes must neither read nor write
 * outside the buffers (ASan, UBSan), and a parsed query's answer must fit the answer buffer or be refused. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "dnswire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char name[256];
	uint16_t qtype;
	size_t qlen;
	if (dns_parse_query(data, size, name, sizeof name, &qtype, &qlen) != 0)
		return 0;
	if (strnlen(name, sizeof name) == sizeof name || 12 + qlen > size)
		abort(); /* the name is NUL-terminated inside its buffer, the question inside the query */
	uint32_t addrs[4] = { 0x64400001, 0x64400002, 0x64400003, 0x64400004 };
	uint8_t out[512];
	for (int count = 0; count <= 4; count += 4) {
		size_t n = dns_build_answer(data, qlen, addrs, count, count ? 0 : 3, out, sizeof out);
		if (n > sizeof out)
			abort();
	}
	return 0;
}

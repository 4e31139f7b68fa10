/* libFuzzer target: the shim's frame header and reply-body parsers (native/shim/common/frame.c). Frames come
 * from the agent's socket: a broken or hostile agent must not make the program's process read out of bounds. */
#include <stdint.h>
#include <stdlib.h>
#include "frame.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct frame_hdr h;
	if (size >= FRAME_HDR)
		frame_decode_hdr(data, &h);
	int32_t err;
	struct connect_reply c;
	struct accepted_reply a;
	uint32_t addrs[8];
	int count = -1;
	parse_errno_reply(data, size, &err);
	parse_connect_reply(data, size, &c);
	parse_accepted_reply(data, size, &a);
	if (parse_resolve_reply(data, size, &err, addrs, 8, &count) == 0 && (count < 0 || count > 8))
		abort(); /* never more addresses stored than room was given */
	return 0;
}

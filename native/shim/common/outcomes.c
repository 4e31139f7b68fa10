/* Outcomes told unasked by the agent (outcomes.h). */
#include "outcomes.h"

static struct {
	uint64_t conn_id;
	int32_t err;
} ring[OUTCOMES_KEPT];
static unsigned next;

void outcomes_put(const uint8_t *body, size_t len)
{
	if (len < 12)
		return;
	uint64_t id = 0;
	for (int i = 7; i >= 0; i--)
		id = id << 8 | body[i];
	unsigned k = next++ % OUTCOMES_KEPT;
	ring[k].conn_id = id;
	ring[k].err = (int32_t)((uint32_t)body[8] | (uint32_t)body[9] << 8 | (uint32_t)body[10] << 16 | (uint32_t)body[11] << 24);
}

int outcomes_take(uint64_t conn_id, int32_t *err)
{
	if (!conn_id)
		return 0;
	for (unsigned i = 0; i < OUTCOMES_KEPT; i++)
		if (ring[i].conn_id == conn_id) {
			*err = ring[i].err;
			ring[i].conn_id = 0;
			return 1;
		}
	return 0;
}

/* Shim settings, read once when the library loads (a constructor), kept in static memory because programs
 * clear their environment (nginx workers) after starting. */
#pragma once
#include <stdint.h>

#define SHIM_DEFAULT_NETWORK "100.96.0.0/16"

struct shim_config {
	int enabled;            /* BOXER_SHIM_SOCK set: 0 makes every wrapper a pure pass-through */
	char sock_path[108];    /* BOXER_SHIM_SOCK (sun_path size) */
	uint32_t net;           /* BOXER_NETWORK, host order, masked */
	uint32_t mask;          /* host order */
	uint32_t self;          /* BOXER_ADDR, host order (0: unknown) */
	char name[64];          /* BOXER_NAME, the member's name ("" : unknown; only a DNS label is taken) */
	char nodes_file[512];   /* BOXER_NODES_FILE ("" : none) */
	char routes_file[512];  /* BOXER_ROUTES_FILE ("" : none; every connect asks the agent) */
	int debug;              /* BOXER_SHIM_DEBUG=1 */
	int keepalive_idle_s;   /* BOXER_KEEPALIVE_IDLE_S (default SHIM_KEEPALIVE_IDLE_S): for NATs stricter than 120 s */
};

extern struct shim_config shim_cfg;

/* Reads the environment once (idempotent, thread-safe). Every wrapper calls it first. */
void shim_init(void);


static inline int shim_enabled(void)
{
	shim_init();
	return shim_cfg.enabled;
}

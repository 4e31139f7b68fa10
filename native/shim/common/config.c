#define _GNU_SOURCE
#include "config.h"
#include "addr.h"
#include "ipc.h"
#include "log.h"
#include "sockutil.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct shim_config shim_cfg;
static pthread_once_t cfg_once = PTHREAD_ONCE_INIT;

static void copy_env(char *dst, size_t cap, const char *name)
{
	const char *v = getenv(name);
	dst[0] = 0;
	if (v && strlen(v) < cap)
		strcpy(dst, v);
}

static void read_config(void)
{
	shim_register_atfork();
	const char *dbg = getenv("BOXER_SHIM_DEBUG");
	shim_cfg.debug = dbg && strcmp(dbg, "1") == 0;
	copy_env(shim_cfg.sock_path, sizeof shim_cfg.sock_path, "BOXER_SHIM_SOCK");
	copy_env(shim_cfg.nodes_file, sizeof shim_cfg.nodes_file, "BOXER_NODES_FILE");
	copy_env(shim_cfg.routes_file, sizeof shim_cfg.routes_file, "BOXER_ROUTES_FILE");
	const char *net = getenv("BOXER_NETWORK");
	if (!net || !*net)
		net = SHIM_DEFAULT_NETWORK;
	if (addr_parse_cidr(net, &shim_cfg.net, &shim_cfg.mask) < 0) {
		shim_log("bad BOXER_NETWORK '%s': shim disabled", net);
		return;
	}
	shim_cfg.keepalive_idle_s = SHIM_KEEPALIVE_IDLE_S;
	const char *ka = getenv("BOXER_KEEPALIVE_IDLE_S");
	if (ka && *ka) {
		char *end;
		long v = strtol(ka, &end, 10);
		if (*end == 0 && v >= 1 && v <= 7200)
			shim_cfg.keepalive_idle_s = (int)v;
		else
			shim_log("bad BOXER_KEEPALIVE_IDLE_S '%s' (1..7200 seconds): keeping %d", ka, SHIM_KEEPALIVE_IDLE_S);
	}
	const char *self = getenv("BOXER_ADDR");
	struct in_addr a;
	if (self && inet_pton(AF_INET, self, &a) == 1)
		shim_cfg.self = ntohl(a.s_addr);
	copy_env(shim_cfg.name, sizeof shim_cfg.name, "BOXER_NAME");
	for (const char *c = shim_cfg.name; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-')) {
			shim_log("bad BOXER_NAME '%s' (not a DNS label): the host name stays the system's", shim_cfg.name);
			shim_cfg.name[0] = 0;
			break;
		}
	shim_cfg.enabled = shim_cfg.sock_path[0] != 0;
	shim_debug("loaded: sock=%s network=%s addr=%s", shim_cfg.sock_path, net, self ? self : "-");
}

void shim_init(void)
{
	pthread_once(&cfg_once, read_config);
}

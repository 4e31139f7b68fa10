/* Logging to stderr: shim_debug only when BOXER_SHIM_DEBUG=1; shim_log for configuration errors. Both keep
 * errno unchanged. */
#pragma once
#include "config.h"

void shim_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define shim_debug(...)                         \
	do {                                    \
		if (shim_cfg.debug)             \
			shim_log(__VA_ARGS__);  \
	} while (0)

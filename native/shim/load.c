/* The library's constructor: loads the settings (common/config.c) and tells the agent the shim is in this
 * program (HELLO), even if it never uses a socket. Only in the shim: the seccomp supervisor links the common
 * cores without it. */
#include "common/config.h"
#include "common/ipc.h"

__attribute__((constructor)) static void shim_constructor(void)
{
	shim_init();
	ipc_hello_at_load();
}

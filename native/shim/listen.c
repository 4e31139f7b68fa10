/* listen(): a TCP socket listening where the virtual network reaches it (its own virtual address, 0.0.0.0
 * or ::) is reported to the agent with LISTEN, so the agent can refuse connects to closed ports; the record
 * remembers it, so the channel re-reports it when it reopens, and close of the last descriptor sends
 * UNLISTEN (socket.c). The listen itself is the kernel's: its result and errno are returned unchanged, even
 * when the agent cannot be told (the program keeps serving native clients; the port is re-reported when the
 * channel reopens). */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "common/addr.h"
#include "common/config.h"
#include "common/fdtable.h"
#include "common/frame.h"
#include "common/ipc.h"
#include "common/libc.h"
#include "common/log.h"
#include "common/sockutil.h"
#include "common/vname.h"

int listen(int fd, int backlog)
{
	int rc = REAL(listen)(fd, backlog);
	if (rc < 0 || !shim_enabled())
		return rc;
	int saved = errno;
	struct vsock v;
	if (shim_track(fd, &v) && vlisten_mark(fd, &v)) {
		fdt_set(fd, &v);
		vlisten_report(v.listen_port);
	}
	errno = saved;
	return rc;
}

/* Who am I: gethostname(), uname(), getifaddrs()/freeifaddrs() and ioctl(SIOCGIFCONF, SIOCGIF*) report the
 * member, so that programs that advertise "their" hostname or address (ZooKeeper, Kafka, Cassandra, Java's
 * InetAddress.getLocalHost(), `hostname -I`) advertise the member's:
 *   - the host name is the member's name (BOXER_NAME); resolving it gives the virtual address (resolve.c);
 *   - an interface `boxer0` with the virtual address and the network's mask comes first in getifaddrs() and
 *     SIOCGIFCONF, where programs pick their address; loopback and the real interfaces follow, unchanged
 *     (programs still reach the host's own services and outside addresses through them);
 *   - SIOCGIFADDR/NETMASK/BRDADDR/FLAGS/MTU/INDEX/HWADDR on `boxer0`, and SIOCGIFNAME of its index, are
 *     answered here; every other ioctl goes to the kernel untouched.
 * Without BOXER_SHIM_SOCK (or BOXER_NAME / BOXER_ADDR) every call passes through. The cores are in
 * common/ident.c. */
#define _GNU_SOURCE
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <stdarg.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "common/config.h"
#include "common/ident.h"
#include "common/libc.h"

/* The member's identity, or 0 when the shim is off or does not know it. */
static int whoami(struct ident *id)
{
	if (!shim_enabled())
		return 0;
	memset(id, 0, sizeof *id);
	strcpy(id->name, shim_cfg.name);
	id->ip = shim_cfg.self;
	id->mask = shim_cfg.mask;
	return id->name[0] || id->ip;
}

int gethostname(char *name, size_t len)
{
	struct ident id;
	if (!whoami(&id) || !id.name[0])
		return REAL(gethostname)(name, len);
	return ident_hostname(id.name, name, len);
}

int uname(struct utsname *buf)
{
	int rc = REAL(uname)(buf);
	struct ident id;
	if (rc == 0 && buf && whoami(&id) && id.name[0])
		ident_uname(id.name, buf);
	return rc;
}

int getifaddrs(struct ifaddrs **ifap)
{
	struct ifaddrs *real;
	int rc = REAL(getifaddrs)(ifap ? &real : NULL);
	struct ident id;
	if (rc < 0 || !ifap)
		return rc;
	*ifap = real;
	if (!whoami(&id) || !id.ip)
		return 0;
	struct ifaddrs *ours = ident_ifaddrs_prepend(&id, real);
	if (!ours) {
		REAL(freeifaddrs)(real);
		errno = ENOMEM;
		return -1;
	}
	*ifap = ours;
	return 0;
}

void freeifaddrs(struct ifaddrs *ifa)
{
	if (ident_ifaddrs_is_ours(ifa))
		ifa = ident_ifaddrs_release(ifa);
	if (ifa)
		REAL(freeifaddrs)(ifa);
}

int ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	va_start(ap, req);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	switch (req) {
	case SIOCGIFCONF:
	case SIOCGIFNAME:
	case SIOCGIFADDR:
	case SIOCGIFNETMASK:
	case SIOCGIFBRDADDR:
	case SIOCGIFFLAGS:
	case SIOCGIFMTU:
	case SIOCGIFINDEX:
	case SIOCGIFHWADDR:
		break;
	default:
		return REAL(ioctl)(fd, req, arg);
	}
	struct ident id;
	if (!arg || !whoami(&id) || !id.ip)
		return REAL(ioctl)(fd, req, arg);
	if (req == SIOCGIFCONF) {
		struct ifconf *ifc = arg;
		int cap = ifc->ifc_len;
		int rc = REAL(ioctl)(fd, req, arg);
		if (rc == 0)
			ident_ifconf(&id, ifc, cap);
		return rc;
	}
	if (ident_ifreq(&id, req, arg))
		return 0;
	return REAL(ioctl)(fd, req, arg);
}

/* Time spent inside a non-blocking connect() (the call only, not the handshake), p50/p99/max in
 * microseconds. Run under LD_PRELOAD of the shim against an agent (or the fake agent of the tests):
 *   connect_latency ADDR PORT [N]
 *       e.g. connect_latency 100.96.0.3 8080 1000: N connects to ADDR:PORT; prints one line
 *       connect_latency n=N p50_us=X p99_us=Y max_us=Z errors=E
 *   connect_latency --routes AGENT_VADDR AGENT_VPORT REAL_IP REAL_PORT [N [PATHS]]
 *       compares the paths of the shim's connect(): writes a route table to $BOXER_ROUTES_FILE with a
 *       `direct` member (100.96.254.1 -> REAL_IP, connected at REAL_PORT) and a `punch` member (100.96.254.2 ->
 *       REAL_IP, XOR 5, OFFSET 7, LO = HI = the M for which (M ^ 5) + 7 = REAL_PORT), then times N connects on
 *       each path, interleaved (direct, punch, and AGENT_VADDR:AGENT_VPORT, which is not in the table: the
 *       CONNECT round trip), after one untimed warm-up connect; prints one line per path:
 *       connect_latency path=direct|punch|agent n=N p50_us=X p99_us=Y max_us=Z errors=E
 *       PATHS (default "direct,punch,agent") picks the paths timed.
 *   connect_latency --burst ADDR PORT N MAX_S
 *       N non-blocking connects at once (the soft descriptor limit raised to the hard one), poll until every
 *       one has ended (at most MAX_S s), then getsockopt(SO_ERROR) on each; prints one line
 *       connect_burst n=N connected=C errors=E up_ms=X soerror_ms=Y
 *       (up_ms: first connect() to the last socket done; soerror_ms: the N getsockopt(SO_ERROR) calls).
 * Each iteration: socket(SOCK_NONBLOCK), time connect(), then close. connect() counts as an error unless it
 * returns 0 or EINPROGRESS. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

struct target {
	const char *name;
	struct sockaddr_in sin;
	double *us;
	int errors;
};

static int make_target(struct target *t, const char *name, const char *addr, int port, int n)
{
	memset(t, 0, sizeof *t);
	t->name = name;
	t->sin.sin_family = AF_INET;
	t->sin.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, addr, &t->sin.sin_addr) != 1) {
		fprintf(stderr, "bad address %s\n", addr);
		return -1;
	}
	t->us = calloc((size_t)n, sizeof *t->us);
	return t->us ? 0 : -1;
}

/* One timed connect; returns the time in microseconds (or -1 if socket() failed). */
static double one(struct target *t, int *err_out)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		perror("socket");
		return -1;
	}
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	int rc = connect(fd, (struct sockaddr *)&t->sin, sizeof t->sin);
	int err = errno;
	clock_gettime(CLOCK_MONOTONIC, &b);
	*err_out = rc < 0 && err != EINPROGRESS ? err : 0;
	close(fd);
	return (double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) / 1e3;
}

static void report(struct target *t, int n, int with_path)
{
	qsort(t->us, (size_t)n, sizeof *t->us, cmp);
	printf("connect_latency %s%s%sn=%d p50_us=%.1f p99_us=%.1f max_us=%.1f errors=%d\n", with_path ? "path=" : "",
	       with_path ? t->name : "", with_path ? " " : "", n, t->us[n / 2], t->us[(int)((n - 1) * 0.99)],
	       t->us[n - 1], t->errors);
}

/* --routes: time connect() on each route of a route table written here (direct, punch) and the agent route. */
static int routes_mode(int argc, char **argv)
{
	const char *routes = getenv("BOXER_ROUTES_FILE");
	if (!routes || !*routes) {
		fprintf(stderr, "--routes needs BOXER_ROUTES_FILE\n");
		return 2;
	}
	int real_port = atoi(argv[5]);
	int n = argc > 6 ? atoi(argv[6]) : 1000;
	if (n < 1)
		n = 1;
	if (real_port < 8 || real_port > 65535) {
		fprintf(stderr, "bad port %s\n", argv[5]);
		return 2;
	}
	int m = (real_port - 7) ^ 5;
	char tmp[600];
	snprintf(tmp, sizeof tmp, "%s.bench%d", routes, (int)getpid());
	FILE *f = fopen(tmp, "w");
	if (!f || fprintf(f, "bench-direct 100.96.254.1 direct %s 0 0 0 0\nbench-punch 100.96.254.2 punch %s 5 7 %d %d\n",
			  argv[4], argv[4], m, m) < 0 || fclose(f) != 0 || rename(tmp, routes) < 0) {
		perror(routes);
		return 1;
	}
	struct target t[3];
	if (make_target(&t[0], "direct", "100.96.254.1", real_port, n) < 0 ||
	    make_target(&t[1], "punch", "100.96.254.2", 1, n) < 0 ||
	    make_target(&t[2], "agent", argv[2], atoi(argv[3]), n) < 0)
		return 2;
	const char *paths = argc > 7 ? argv[7] : "direct,punch,agent";
	int on[3];
	for (int k = 0; k < 3; k++)
		on[k] = strstr(paths, t[k].name) != NULL;
	int err;
	for (int k = 0; k < 3; k++) /* warm-up: the table is read, the channel is open */
		if (on[k])
			one(&t[k], &err);
	for (int i = 0; i < n; i++)
		for (int k = 0; k < 3; k++) {
			if (!on[k])
				continue;
			double us = one(&t[k], &err);
			if (us < 0)
				return 1;
			t[k].us[i] = us;
			if (err)
				t[k].errors++;
		}
	for (int k = 0; k < 3; k++)
		if (on[k])
			report(&t[k], n, 1);
	return 0;
}

static double ms_since(const struct timespec *a)
{
	struct timespec b;
	clock_gettime(CLOCK_MONOTONIC, &b);
	return (double)(b.tv_sec - a->tv_sec) * 1e3 + (double)(b.tv_nsec - a->tv_nsec) / 1e6;
}

static int burst_mode(char **argv)
{
	int n = atoi(argv[4]), max_s = atoi(argv[5]);
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	struct target t;
	if (n < 1 || max_s < 1 || make_target(&t, "", argv[2], atoi(argv[3]), 1) < 0)
		return 2;
	struct pollfd *p = calloc((size_t)n, sizeof *p);
	char *failed = calloc((size_t)n, 1);
	if (!p || !failed)
		return 1;
	int errors = 0, connected = 0;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < n; i++) {
		p[i].fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		if (p[i].fd < 0) {
			perror("socket");
			return 1;
		}
		p[i].events = POLLOUT;
		if (connect(p[i].fd, (struct sockaddr *)&t.sin, sizeof t.sin) < 0 && errno != EINPROGRESS) {
			failed[i] = 1;
			p[i].fd = -p[i].fd - 1; /* ended: poll skips negative descriptors */
		}
	}
	int left = n;
	for (int i = 0; i < n; i++)
		left -= failed[i];
	for (; left > 0 && ms_since(&t0) < max_s * 1e3;) {
		if (poll(p, (nfds_t)n, 100) < 0 && errno != EINTR)
			return 1;
		for (int i = 0; i < n; i++)
			if (p[i].fd >= 0 && p[i].revents) {
				p[i].fd = -p[i].fd - 1;
				left--;
			}
	}
	double up_ms = ms_since(&t0);
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	for (int i = 0; i < n; i++) {
		int fd = p[i].fd < 0 ? -p[i].fd - 1 : p[i].fd, e = 0;
		socklen_t l = sizeof e;
		if (failed[i] || p[i].fd >= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l) < 0 || e)
			errors++;
		else
			connected++;
	}
	double soerror_ms = ms_since(&t1);
	printf("connect_burst n=%d connected=%d errors=%d up_ms=%.1f soerror_ms=%.2f\n", n, connected, errors, up_ms,
	       soerror_ms);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 6 && strcmp(argv[1], "--routes") == 0)
		return routes_mode(argc, argv);
	if (argc >= 6 && strcmp(argv[1], "--burst") == 0)
		return burst_mode(argv);
	if (argc < 3) {
		fprintf(stderr, "usage: %s ADDR PORT [N]\n       %s --routes AGENT_VADDR AGENT_VPORT REAL_IP REAL_PORT [N [PATHS]]\n       %s --burst ADDR PORT N MAX_S\n",
			argv[0], argv[0], argv[0]);
		return 2;
	}
	int n = argc > 3 ? atoi(argv[3]) : 1000;
	if (n < 1)
		n = 1;
	struct target t;
	if (make_target(&t, "", argv[1], atoi(argv[2]), n) < 0)
		return 2;
	for (int i = 0; i < n; i++) {
		int err;
		double us = one(&t, &err);
		if (us < 0)
			return 1;
		t.us[i] = us;
		if (err)
			t.errors++;
	}
	report(&t, n, 0);
	return 0;
}

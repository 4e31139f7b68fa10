/* Time spent inside a non-blocking connect() (the call only, not the handshake), p50/p99/max in
 * microseconds. Run under LD_PRELOAD of the shim against an agent (or the fake agent of the tests):
 *   connect_latency ADDR PORT [N]      e.g. connect_latency 100.96.0.3 8080 1000
 * Each iteration: socket(SOCK_NONBLOCK), time connect(), then close. Prints one line:
 *   connect_latency n=N p50_us=X p99_us=Y max_us=Z errors=E
 * connect() counts as an error unless it returns 0 or EINPROGRESS. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s ADDR PORT [N]\n", argv[0]);
		return 2;
	}
	int n = argc > 3 ? atoi(argv[3]) : 1000;
	if (n < 1)
		n = 1;
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
	if (inet_pton(AF_INET, argv[1], &sin.sin_addr) != 1) {
		fprintf(stderr, "bad address %s\n", argv[1]);
		return 2;
	}
	double *us = calloc((size_t)n, sizeof *us);
	int errors = 0;
	for (int i = 0; i < n; i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		if (fd < 0) {
			perror("socket");
			return 1;
		}
		struct timespec a, b;
		clock_gettime(CLOCK_MONOTONIC, &a);
		int rc = connect(fd, (struct sockaddr *)&sin, sizeof sin);
		int err = errno;
		clock_gettime(CLOCK_MONOTONIC, &b);
		if (rc < 0 && err != EINPROGRESS)
			errors++;
		us[i] = (double)(b.tv_sec - a.tv_sec) * 1e6 + (double)(b.tv_nsec - a.tv_nsec) / 1e3;
		close(fd);
	}
	qsort(us, (size_t)n, sizeof *us, cmp);
	printf("connect_latency n=%d p50_us=%.1f p99_us=%.1f max_us=%.1f errors=%d\n", n, us[n / 2],
	       us[(int)((n - 1) * 0.99)], us[n - 1], errors);
	free(us);
	return 0;
}

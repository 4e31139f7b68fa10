/* A statically linked TCP client and server for the seccomp tests (built with gcc -static by the test: no
 * dynamic loader, so the preload shim cannot load; only the seccomp supervisor gives it the network).
 *   static_tcp serve PORT COUNT          blocking accept, COUNT times: prints
 *                                        "ACCEPTED peer=A:P local=A:P", reads a line, answers "echo:LINE"
 *   static_tcp get ADDR PORT MSG         blocking connect: "CONNECTED local=A:P peer=A:P", then "REPLY ..."
 *   static_tcp nbget ADDR PORT MSG       the same with a non-blocking connect, poll and SO_ERROR:
 *                                        "NBCONNECT errno-name" first
 *   static_tcp refused ADDR PORT         non-blocking connect to a closed port: "REFUSED first then" */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const char *name(const struct sockaddr_in *a, char *buf)
{
	char ip[32];
	inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
	sprintf(buf, "%s:%u", ip, ntohs(a->sin_port));
	return buf;
}

static const char *ename(int e)
{
	switch (e) {
	case 0: return "OK";
	case EINPROGRESS: return "EINPROGRESS";
	case ECONNREFUSED: return "ECONNREFUSED";
	case EHOSTUNREACH: return "EHOSTUNREACH";
	case ENETUNREACH: return "ENETUNREACH";
	case ETIMEDOUT: return "ETIMEDOUT";
	default: return strerror(e);
	}
}

static void names(int fd, const char *what)
{
	struct sockaddr_in l, p;
	socklen_t ll = sizeof l, pl = sizeof p;
	char a[64], b[64];
	getsockname(fd, (struct sockaddr *)&l, &ll);
	getpeername(fd, (struct sockaddr *)&p, &pl);
	printf("%s local=%s peer=%s\n", what, name(&l, a), name(&p, b));
	fflush(stdout);
}

/* Waits (bounded) for a non-blocking connect; returns SO_ERROR. */
static int finish(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	if (poll(&p, 1, 20000) != 1)
		return ETIMEDOUT;
	int err = 0;
	socklen_t l = sizeof err;
	getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l);
	return err;
}

static int client(const char *ip, int port, const char *msg, int nonblock)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	inet_pton(AF_INET, ip, &a.sin_addr);
	if (nonblock)
		fcntl(fd, F_SETFL, O_NONBLOCK);
	int rc = connect(fd, (struct sockaddr *)&a, sizeof a);
	int err = rc < 0 ? errno : 0;
	if (nonblock) {
		printf("NBCONNECT %s\n", ename(err));
		if (err == EINPROGRESS)
			err = finish(fd);
		fcntl(fd, F_SETFL, 0);
	}
	if (err) {
		printf("FAILED %s\n", ename(err));
		return 1;
	}
	names(fd, "CONNECTED");
	char line[256];
	snprintf(line, sizeof line, "%s\n", msg);
	if (write(fd, line, strlen(line)) < 0)
		return 1;
	ssize_t n = read(fd, line, sizeof line - 1);
	line[n > 0 ? n : 0] = 0;
	printf("REPLY %s", line);
	fflush(stdout);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 4 && !strcmp(argv[1], "serve")) {
		int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
		if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 16) < 0) {
			perror("bind/listen");
			return 1;
		}
		printf("LISTENING\n");
		for (int i = 0; i < atoi(argv[3]); i++) {
			struct sockaddr_in p;
			socklen_t pl = sizeof p;
			int c = accept(s, (struct sockaddr *)&p, &pl);
			if (c < 0) {
				perror("accept");
				continue;
			}
			char pa[64], line[256];
			names(c, "ACCEPTED");
			printf("ACCEPT-ADDR %s\n", name(&p, pa));
			ssize_t n = read(c, line, sizeof line - 1);
			line[n > 0 ? n : 0] = 0;
			char out[300];
			snprintf(out, sizeof out, "echo:%s", line);
			if (write(c, out, strlen(out)) < 0)
				perror("write");
			close(c);
		}
		return 0;
	}
	if (argc == 5 && (!strcmp(argv[1], "get") || !strcmp(argv[1], "nbget")))
		return client(argv[2], atoi(argv[3]), argv[4], argv[1][0] == 'n');
	if (argc == 4 && !strcmp(argv[1], "refused")) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[3]))};
		inet_pton(AF_INET, argv[2], &a.sin_addr);
		int rc = connect(fd, (struct sockaddr *)&a, sizeof a);
		int first = rc < 0 ? errno : 0;
		int then = first == EINPROGRESS ? finish(fd) : first;
		printf("REFUSED %s %s\n", ename(first), ename(then));
		return 0;
	}
	fprintf(stderr, "usage: static_tcp serve PORT COUNT | get|nbget ADDR PORT MSG | refused ADDR PORT\n");
	return 2;
}

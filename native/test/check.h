/* A minimal unit-test harness: CHECK(cond) records a failure with its line; check_done() prints one summary
 * line per test program and returns the exit status. */
#pragma once
#include <stdio.h>

static int check_failures, check_count;
#define CHECK(cond)                                                                  \
	do {                                                                         \
		check_count++;                                                       \
		if (!(cond)) {                                                       \
			check_failures++;                                            \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
		}                                                                    \
	} while (0)

static inline int check_done(const char *name)
{
	printf("%s: %d checks, %d failed\n", name, check_count, check_failures);
	return check_failures ? 1 : 0;
}

#define _GNU_SOURCE
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "libc.h"

char *file_read_whole(const char *path, size_t max, size_t *len, struct stat *st)
{
	int saved = errno;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		goto fail;
	char *buf = NULL;
	if (fstat(fd, st) < 0 || (size_t)st->st_size > max || !(buf = malloc((size_t)st->st_size + 1))) {
		REAL(close)(fd);
		goto fail;
	}
	size_t off = 0;
	while (off < (size_t)st->st_size) {
		ssize_t n = read(fd, buf + off, (size_t)st->st_size - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			REAL(close)(fd);
			free(buf);
			goto fail;
		}
		off += (size_t)n;
	}
	REAL(close)(fd);
	buf[off] = 0;
	*len = off;
	errno = saved;
	return buf;
fail:
	errno = saved;
	return NULL;
}

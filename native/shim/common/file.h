/* Reading a small file whole: the member file and the route table, which the agent replaces atomically
 * (temporary file + rename), so one open() sees one complete version. */
#pragma once
#include <stddef.h>
#include <sys/stat.h>

/* The whole file at path, NUL-terminated, in a malloc()ed buffer the caller frees; *len its length and *st
 * its fstat(). NULL (errno kept) when it cannot be opened or read, or is larger than max bytes. */
char *file_read_whole(const char *path, size_t max, size_t *len, struct stat *st);

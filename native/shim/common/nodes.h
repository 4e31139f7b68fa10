/* The member file (BOXER_NODES_FILE): one member per line, `ID VIRTUAL_ADDR NAME`, blank lines and lines
 * starting with '#' ignored, malformed lines skipped. Re-read when its mtime (or size or inode) changes. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#define NODE_NAME_MAX 64

struct node_entry {
	uint32_t ip; /* host order */
	char name[NODE_NAME_MAX];
};

struct node_list {
	struct node_entry *v;
	int n;
};

/* Parses the file's text (pure; unit-tested). Returns 0, or -1 on allocation failure. Free with
 * nodes_free(). */
int nodes_parse(const char *text, struct node_list *out);
void nodes_free(struct node_list *l);

/* Normalizes a name asked for: strips one trailing '.', then a trailing ".boxer" (any case). Returns 1 if
 * ".boxer" was stripped. out must hold NODE_NAME_MAX bytes; names too long come out empty. */
int nodes_normalize(const char *name, char *out);

/* Finds a member by (normalized) name, case-insensitive. Returns 1 and sets *ip, or 0. */
int nodes_find(const struct node_list *l, const char *norm_name, uint32_t *ip);

/* Looks name up in the member file at path (cached, re-read on change). Returns 1 and *ip, else 0. */
int nodes_lookup_file(const char *path, const char *norm_name, uint32_t *ip);

/* The name of the member at ip (host order): 1 and name copied into out (NODE_NAME_MAX bytes), else 0. */
int nodes_find_ip(const struct node_list *l, uint32_t ip, char *out);

/* Reverse lookup in the member file at path (cached as nodes_lookup_file). */
int nodes_name_file(const char *path, uint32_t ip, char *out);

void nodes_atfork_prepare(void);
void nodes_atfork_parent(void);
void nodes_atfork_child(void);

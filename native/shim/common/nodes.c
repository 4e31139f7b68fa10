#define _GNU_SOURCE
#include "nodes.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"
#include "libc.h"

/* A member file larger than this is not read (a bound on the shim's memory). */
#define NODES_FILE_MAX (1 << 20)

static int parse_line(const char *s, size_t len, struct node_entry *e)
{
	char line[256], id[64], addr[64], name[NODE_NAME_MAX + 1];
	if (len >= sizeof line)
		return -1;
	memcpy(line, s, len);
	line[len] = 0;
	const char *p = line;
	while (isspace((unsigned char)*p))
		p++;
	if (*p == 0 || *p == '#')
		return -1;
	char extra[2];
	if (sscanf(p, "%63s %63s %64s %1s", id, addr, name, extra) != 3)
		return -1;
	if (strlen(name) >= NODE_NAME_MAX)
		return -1;
	struct in_addr a;
	if (inet_pton(AF_INET, addr, &a) != 1)
		return -1;
	e->ip = ntohl(a.s_addr);
	strcpy(e->name, name);
	return 0;
}

int nodes_parse(const char *text, struct node_list *out)
{
	out->v = NULL;
	out->n = 0;
	int cap = 0;
	const char *p = text;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		struct node_entry e;
		if (parse_line(p, len, &e) == 0) {
			if (out->n == cap) {
				int nc = cap ? cap * 2 : 16;
				struct node_entry *v = realloc(out->v, (size_t)nc * sizeof *v);
				if (!v) {
					nodes_free(out);
					return -1;
				}
				out->v = v;
				cap = nc;
			}
			out->v[out->n++] = e;
		}
		if (!nl)
			break;
		p = nl + 1;
	}
	return 0;
}

void nodes_free(struct node_list *l)
{
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

int nodes_normalize(const char *name, char *out)
{
	size_t n = strlen(name);
	int stripped = 0;
	out[0] = 0;
	if (n && name[n - 1] == '.')
		n--;
	if (n > 6 && strncasecmp(name + n - 6, ".boxer", 6) == 0) {
		n -= 6;
		stripped = 1;
	}
	if (n >= NODE_NAME_MAX)
		return stripped;
	memcpy(out, name, n);
	out[n] = 0;
	return stripped;
}

int nodes_find(const struct node_list *l, const char *norm_name, uint32_t *ip)
{
	if (!norm_name[0])
		return 0;
	for (int i = 0; i < l->n; i++)
		if (strcasecmp(l->v[i].name, norm_name) == 0) {
			*ip = l->v[i].ip;
			return 1;
		}
	return 0;
}

int nodes_find_ip(const struct node_list *l, uint32_t ip, char *out)
{
	for (int i = 0; i < l->n; i++)
		if (l->v[i].ip == ip) {
			strcpy(out, l->v[i].name);
			return 1;
		}
	return 0;
}

static pthread_mutex_t nodes_lock = PTHREAD_MUTEX_INITIALIZER;
static struct node_list cache;
static struct timespec cache_mtime;
static off_t cache_size;
static ino_t cache_ino;
static int cache_valid;

static void reload(const char *path)
{
	struct stat st;
	size_t len;
	char *buf = file_read_whole(path, NODES_FILE_MAX, &len, &st);
	if (!buf)
		return;
	struct node_list l;
	if (nodes_parse(buf, &l) == 0) {
		nodes_free(&cache);
		cache = l;
		cache_mtime = st.st_mtim;
		cache_size = st.st_size;
		cache_ino = st.st_ino;
		cache_valid = 1;
	}
	free(buf);
}

/* Re-reads the file if it changed; called with nodes_lock held. */
static void refresh(const char *path)
{
	struct stat st;
	if (stat(path, &st) == 0) {
		if (!cache_valid || st.st_mtim.tv_sec != cache_mtime.tv_sec ||
		    st.st_mtim.tv_nsec != cache_mtime.tv_nsec || st.st_size != cache_size || st.st_ino != cache_ino)
			reload(path);
	}
}

int nodes_lookup_file(const char *path, const char *norm_name, uint32_t *ip)
{
	if (!path || !path[0])
		return 0;
	pthread_mutex_lock(&nodes_lock);
	refresh(path);
	int found = cache_valid && nodes_find(&cache, norm_name, ip);
	pthread_mutex_unlock(&nodes_lock);
	return found;
}

int nodes_name_file(const char *path, uint32_t ip, char *out)
{
	if (!path || !path[0])
		return 0;
	pthread_mutex_lock(&nodes_lock);
	refresh(path);
	int found = cache_valid && nodes_find_ip(&cache, ip, out);
	pthread_mutex_unlock(&nodes_lock);
	return found;
}

void nodes_atfork_prepare(void) { pthread_mutex_lock(&nodes_lock); }
void nodes_atfork_parent(void) { pthread_mutex_unlock(&nodes_lock); }
void nodes_atfork_child(void) { pthread_mutex_init(&nodes_lock, NULL); }

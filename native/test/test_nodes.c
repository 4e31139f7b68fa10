/* The member file: parsing, name normalization, lookup, re-reading when the file changes. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "nodes.h"

int main(void)
{
	struct node_list l;
	CHECK(nodes_parse("# members\n1 100.96.0.2 fn2\n\n  2 100.96.0.3   fn3  \nbad line\n"
			  "3 999.1.1.1 broken\n4 100.96.0.4 too many fields\n5 100.96.0.5 Fn5",
			  &l) == 0);
	CHECK(l.n == 3);
	uint32_t ip;
	char norm[NODE_NAME_MAX];
	CHECK(nodes_normalize("fn3", norm) == 0 && strcmp(norm, "fn3") == 0);
	CHECK(nodes_normalize("fn3.boxer", norm) == 1 && strcmp(norm, "fn3") == 0);
	CHECK(nodes_normalize("FN3.Boxer.", norm) == 1 && strcmp(norm, "FN3") == 0);
	CHECK(nodes_normalize(".boxer", norm) == 0);
	CHECK(nodes_normalize("example.com", norm) == 0 && strcmp(norm, "example.com") == 0);
	CHECK(nodes_find(&l, "fn3", &ip) == 1 && ip == 0x64600003);
	CHECK(nodes_find(&l, "FN3", &ip) == 1);
	CHECK(nodes_find(&l, "fn5", &ip) == 1 && ip == 0x64600005);
	CHECK(nodes_find(&l, "fn4", &ip) == 0);
	CHECK(nodes_find(&l, "", &ip) == 0);
	char name[NODE_NAME_MAX];
	CHECK(nodes_find_ip(&l, 0x64600003, name) == 1 && strcmp(name, "fn3") == 0);
	CHECK(nodes_find_ip(&l, 0x64600009, name) == 0);
	nodes_free(&l);
	CHECK(nodes_parse("", &l) == 0 && l.n == 0);

	char path[] = "/tmp/boxer-nodes-XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	FILE *f = fdopen(fd, "w");
	fputs("1 100.96.0.2 fn2\n", f);
	fclose(f);
	CHECK(nodes_lookup_file(path, "fn2", &ip) == 1 && ip == 0x64600002);
	CHECK(nodes_lookup_file(path, "fn7", &ip) == 0);
	/* a new member: the file changes (size and mtime), the next lookup re-reads it */
	f = fopen(path, "a");
	fputs("2 100.96.0.7 fn7\n", f);
	fclose(f);
	CHECK(nodes_lookup_file(path, "fn7", &ip) == 1 && ip == 0x64600007);
	CHECK(nodes_name_file(path, 0x64600007, name) == 1 && strcmp(name, "fn7") == 0);
	CHECK(nodes_name_file(path, 0x64600008, name) == 0);
	CHECK(nodes_lookup_file("/nonexistent/boxer-nodes", "fn2", &ip) == 1); /* the cache of the last file */
	CHECK(nodes_lookup_file("", "fn2", &ip) == 0);
	unlink(path);
	return check_done("test_nodes");
}

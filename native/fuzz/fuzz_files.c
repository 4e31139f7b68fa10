/* libFuzzer target: the parsers of the two files the agent writes and every process under the shim reads, the
 * member file (nodes.c) and the route table (routes.c). A torn or hostile file must parse to a bounded table,
 * and the look-ups over it must stay in bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "nodes.h"
#include "routes.h"

static struct route_table table;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	struct node_list l = { 0 };
	if (nodes_parse(text, &l) == 0) {
		char out[NODE_NAME_MAX];
		uint32_t ip;
		for (int i = 0; i < l.n && i < 4; i++) {
			nodes_find_ip(&l, l.v[i].ip, out);
			nodes_find(&l, l.v[i].name, &ip);
		}
		nodes_free(&l);
	}
	int n = routes_parse(text, size, &table);
	if (n < 0 || n > ROUTES_MAX || table.n > ROUTES_MAX || table.ns > SOURCES_MAX || table.nsvc > SERVICE_LINES_MAX)
		abort();
	for (int i = 0; i < table.n && i < 4; i++) {
		routes_find(&table, table.r[i].vaddr);
		struct route named;
		routes_classify_peer(&table, table.r[i].vaddr, 40000, &named);
	}
	free(text);
	return 0;
}

/* The fd table: records shared by duplicates, release of the last reference, listeners, ranges. */
#include <string.h>

#include "check.h"
#include "fdtable.h"

static int unlistened[8], nunlistened;
static void on_last(uint16_t port) { unlistened[nunlistened++] = port; }

/* Long by design: one check after another on shared buffers, each section commented, reading as the spec. */
int main(void)
{
	struct vsock v, got;
	memset(&v, 0, sizeof v);
	v.family = 10;
	CHECK(fdt_get(3, &got) == 0);
	CHECK(fdt_new(3, &v) == 0);
	CHECK(fdt_get(3, &got) == 1 && got.family == 10);
	CHECK(fdt_get(-1, &got) == 0);

	/* dup shares the record: an update through one descriptor shows through the other */
	fdt_dup(3, 7);
	got.has_peer = 1;
	got.vpeer_ip = 0x64600003;
	CHECK(fdt_set(7, &got) == 0);
	CHECK(fdt_get(3, &got) == 1 && got.has_peer && got.vpeer_ip == 0x64600003);
	CHECK(fdt_remove(3, NULL) == 0);
	CHECK(fdt_get(7, &got) == 1 && got.vpeer_ip == 0x64600003);
	CHECK(fdt_set(3, &got) == -1);

	/* dup of an untracked descriptor untracks the target */
	fdt_dup(4, 7);
	CHECK(fdt_get(7, &got) == 0);

	/* dup onto itself changes nothing */
	fdt_new(5, &v);
	fdt_dup(5, 5);
	CHECK(fdt_get(5, &got) == 1);

	/* listeners: only the last reference reports */
	memset(&v, 0, sizeof v);
	v.listening = 1;
	v.listen_port = 8080;
	fdt_new(10, &v);
	fdt_dup(10, 11);
	uint16_t ports[4];
	CHECK(fdt_listening_ports(ports, 4) == 1 && ports[0] == 8080);
	struct vsock last;
	CHECK(fdt_remove(10, &last) == 0);
	CHECK(fdt_remove(11, &last) == 1 && last.listen_port == 8080);
	CHECK(fdt_listening_ports(ports, 4) == 0);

	/* replacing a descriptor releases its old record */
	fdt_new(12, &v);
	memset(&v, 0, sizeof v);
	fdt_new(12, &v);
	CHECK(fdt_listening_ports(ports, 4) == 0);

	/* large descriptor numbers grow the table */
	CHECK(fdt_new(5000, &v) == 0 && fdt_get(5000, &got) == 1);
	CHECK(fdt_new(1 << 21, &v) == -1);

	/* ranges */
	v.listening = 1;
	v.listen_port = 9000;
	fdt_new(20, &v);
	v.listen_port = 9001;
	fdt_new(21, &v);
	fdt_dup(21, 40);
	fdt_remove_range(15, 30, on_last);
	CHECK(nunlistened == 1 && unlistened[0] == 9000);
	CHECK(fdt_get(20, &got) == 0 && fdt_get(21, &got) == 0 && fdt_get(40, &got) == 1);
	fdt_remove_range(0, ~0u, on_last);
	CHECK(nunlistened == 2 && unlistened[1] == 9001);
	CHECK(fdt_get(5000, &got) == 0 && fdt_get(5, &got) == 0);
	fdt_reset();
	return check_done("test_fdtable");
}

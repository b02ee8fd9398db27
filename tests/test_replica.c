// SPDX-License-Identifier: MIT
/* What a replica writes into its stats file, read back (targets/replica.c):
 * the daemon's autoscale and the endpoint's servers rest on it, and the
 * text is the replica's, hence a user's. */
#include <string.h>

#include "../targets/replica.h"
#include "tap.h"

static void in_flight(void)
{
	CHECK(replica_stats_in_flight("in_flight 3\n") == 3, "in_flight 3");
	CHECK(replica_stats_in_flight("in_flight 5\ndirect_port 4100\n") == 5,
	      "in_flight beside a direct port");
	CHECK(replica_stats_in_flight("direct_port 4100\nin_flight 7") == 7,
	      "in_flight on a later line, no newline at the end");
	CHECK(replica_stats_in_flight("") == -1 &&
	      replica_stats_in_flight("in_flight\n") == -1 &&
	      replica_stats_in_flight("in_flight x\n") == -1 &&
	      replica_stats_in_flight("in_flight 12345678\n") == -1 &&
	      replica_stats_in_flight("in_flight 3 4\n") == -1 &&
	      replica_stats_in_flight("in_flights 3\n") == -1,
	      "garbage is unknown (-1)");
}

static void direct(void)
{
	CHECK(replica_stats_direct_port("in_flight 0\ndirect_port 41234\n") ==
	      41234, "direct_port 41234");
	CHECK(replica_stats_direct_port("direct_port 1") == 1,
	      "the first line, no newline at the end");
	CHECK(replica_stats_direct_port("in_flight 0\n") == 0 &&
	      replica_stats_direct_port("") == 0, "none: 0");
	CHECK(replica_stats_direct_port("direct_port 0\n") == 0 &&
	      replica_stats_direct_port("direct_port 65536\n") == 0 &&
	      replica_stats_direct_port("direct_port 99999\n") == 0 &&
	      replica_stats_direct_port("direct_port -1\n") == 0 &&
	      replica_stats_direct_port("direct_port 80x\n") == 0,
	      "not a port: 0");
}

int main(void)
{
	in_flight();
	direct();
	return tap_done();
}

#!/usr/bin/env bash
# store-pg.sh TEST_STORE [CRITERION_OPTION...] - the store's unit tests against
# PostgreSQL (ctest "unit.store_pg"): starts a private cluster
# (tests/integration/pg.sh: Unix socket only, stopped by PID, also at exit),
# runs the test_store executable TEST_STORE with IMGMETA_TEST_PG set to its
# URI (every database a test opens is then a schema of its own there:
# tests/unit/store_test.h), then stops the cluster. The options after
# TEST_STORE go to the executable (--filter, --jobs, --verbose). Exits with
# the executable's status (1 when the cluster cannot be started).
set -u
if [ $# -lt 1 ]; then
    echo "usage: store-pg.sh TEST_STORE [CRITERION_OPTION...]" >&2
    exit 2
fi
test_store=$1
shift
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/../integration/lib.sh"
. "$here/../integration/pg.sh"
lib_init "" "" "" # IT_DIR, and the exit trap that stops what was started
pg_start "$IT_DIR/pg" || die "cannot start PostgreSQL"
IMGMETA_TEST_PG=$PG_URI "$test_store" "$@"
rc=$?
pg_stop
exit "$rc"

#!/usr/bin/env bash
# container.sh IMGMETA FIXTURE REGFRONT - the container image end to end (ctest
# "container", slow): builds it (cmake/container.sh: buildah, vfs storage,
# localhost/imgmeta:latest), then runs it with podman against the fixture
# registry through --mirror and checks what a user of the image sees:
#   - the seed page (tests/cases/python-3.7-slim), byte for byte after digest
#     mapping, as cases.sh checks the daemon's;
#   - the daemon runs as a non-root user (the image's `imgmeta`);
#   - /healthz and /readyz answer 200;
#   - `podman stop` ends it cleanly within the shutdown timeout: exit status 0
#     (not 137: not killed), and `imgmeta cache check` finds the database clean;
#   - the cache survives a restart on the same volume: with the registry gone,
#     the restarted container still answers the page, from its cache;
#   - the image's size is printed (a figure, not asserted).
# IMGMETA (the host build) is only lib.sh's argument: the daemon under test is
# the one in the image; FIXTURE and REGFRONT fill and front the registry.
#
# podman on these machines: the vfs storage buildah built into, runc (crun
# refuses a hybrid cgroup layout), explicit ulimits below the machine's hard
# limits, host networking to reach the loopback fixtures. Every container and
# the volume are removed at exit; the podman client of each run is recorded by
# PID, as every server the tests start.
#
# Skips (exit 0, saying why) only when not root: buildah and podman need it here.
set -u

if [ $# -ne 3 ]; then
    echo "usage: $0 IMGMETA FIXTURE REGFRONT" >&2
    exit 2
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "container: SKIPPED: not root (buildah and podman with vfs storage need root here)"
    exit 0
fi
for tool in buildah podman docker-registry curl jq cmp; do
    command -v "$tool" >/dev/null || { echo "container: needs $tool (cmake/install-deps.sh test)" >&2; exit 1; }
done

. "$(dirname "${BASH_SOURCE[0]}")/integration/lib.sh"
lib_init "$1" "$2" "$3"
CASE=$IMGMETA_SOURCE_DIR/tests/cases/python-3.7-slim
IMAGE=localhost/imgmeta:latest
NAME=imgmeta-test-$$
VOLUME=imgmeta-test-$$
PODMAN=(podman --storage-driver vfs --runtime runc)
RUN_FLAGS=(--network host --ulimit nofile=4096:4096 --ulimit nproc=4096:4096)

cleanup_containers() {
    "${PODMAN[@]}" rm -f -t 0 "$NAME" >/dev/null 2>&1
    "${PODMAN[@]}" volume rm -f "$VOLUME" >/dev/null 2>&1
    return 0
}
it_cleanup cleanup_containers

"$IMGMETA_SOURCE_DIR/cmake/container.sh" "$IMGMETA_SOURCE_DIR" >"$IT_DIR/build.out" \
    2>"$IT_DIR/build.log" || {
    tail -n 40 "$IT_DIR/build.log" >&2
    die "cannot build the image (cmake/container.sh)"
}
grep '^container: base ' "$IT_DIR/build.log"
SIZE=$("${PODMAN[@]}" image inspect --format '{{.Size}}' "$IMAGE")
printf 'container: image %s: %s bytes (%s MiB)\n' "$IMAGE" "$SIZE" "$((SIZE / 1024 / 1024))"

start_registry "$IT_DIR/registry" || die "cannot start docker-registry"
SEED=$CASE/seed.json fill_fixture || die "imgmeta-fixture push failed"
check "the push makes the committed digests.tsv" cmp "$CASE/digests.tsv" "$IT_OUT/digests.tsv"
start_front --bearer || die "cannot start regfront"
"${PODMAN[@]}" volume create "$VOLUME" >/dev/null || die "cannot create volume $VOLUME"

# run_container LOG: the image's daemon on a free loopback port (host network:
# the port must be chosen before), the cache on the volume; the podman client
# runs in the foreground of a background job, recorded by PID. Sets CPID, CURL.
run_container() {
    local port
    port=$(free_port) || return 1
    : >"$1"
    "${PODMAN[@]}" run --rm --name "$NAME" "${RUN_FLAGS[@]}" \
        -v "$VOLUME:/var/cache/imgmeta" "$IMAGE" \
        serve --listen "127.0.0.1:$port" --db /var/cache/imgmeta/cache.db \
        --mirror "docker.io=$FRONT_URL" >"$1" 2>&1 &
    CPID=$!
    it_record "$CPID"
    CURL=http://127.0.0.1:$port
    IT_WAIT_S=120 wait_http "$CURL/healthz" 200 "$CPID" || { tail -n 30 "$1" >&2; return 1; }
}

# stop_container LOG: `podman stop` (SIGTERM, then SIGKILL after 30 s, past the
# daemon's 10 s shutdown timeout); checks the container's exit status (its
# podman client's) and the daemon's last word in LOG.
stop_container() {
    local rc
    "${PODMAN[@]}" stop -t 30 "$NAME" >/dev/null 2>&1
    wait "$CPID"
    rc=$?
    check_eq "podman stop: the container exits 0 (not 137: SIGTERM did it, no SIGKILL)" 0 "$rc"
    check_eq "podman stop: the daemon's last line says it stopped, not forced" \
        "event=stopped" "$(grep -o 'event=stop.*' "$1" | tail -n 1)"
}

run_container "$IT_DIR/run1.log" || die "the container does not start"
check_eq "/healthz answers 200" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$CURL/healthz")"
check_eq "/readyz answers 200" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$CURL/readyz")"

code=$(curl -s -o "$IT_DIR/page.md" -w '%{http_code}' --max-time 60 \
    "$CURL/images/library/python/3.7-slim?format=markdown")
check_eq "the seed page answers 200" 200 "$code"
to_page_digests "$IT_DIR/page.md" >"$IT_DIR/page.mapped.md"
check_file_eq "the seed page, digests mapped, equals expected.md byte for byte" \
    "$CASE/expected.md" "$IT_DIR/page.mapped.md"

pid=$("${PODMAN[@]}" inspect --format '{{.State.Pid}}' "$NAME")
uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
image_uid=$("${PODMAN[@]}" exec "$NAME" id -u imgmeta 2>/dev/null)
check "the daemon runs as a non-root user (uid ${uid:-?}, the image's imgmeta)" \
    test -n "$uid" -a "$uid" != 0 -a "$uid" = "$image_uid"
check_eq "the daemon is the container's first process, imgmeta" "imgmeta" \
    "$(tr '\0' ' ' <"/proc/$pid/cmdline" | cut -d' ' -f1 | sed 's|.*/||')"

stop_container "$IT_DIR/run1.log"
MOUNT=$("${PODMAN[@]}" volume inspect --format '{{.Mountpoint}}' "$VOLUME")
check "after the stop, the database is closed: on the volume, cache.db and no WAL left" \
    bash -c "test -s '$MOUNT/cache.db' && test ! -s '$MOUNT/cache.db-wal'"
"${PODMAN[@]}" run --rm "${RUN_FLAGS[@]}" -v "$VOLUME:/var/cache/imgmeta" "$IMAGE" \
    cache check --db /var/cache/imgmeta/cache.db >"$IT_DIR/check.log" 2>&1
rc=$?
check_eq "after the stop, imgmeta cache check finds the database clean (exit 0)" 0 "$rc"
[ "$rc" = 0 ] || cat "$IT_DIR/check.log"

# The registry and its front go away; the page comes from the volume's cache.
kill -TERM "$FRONT_PID" "$REGISTRY_PID" 2>/dev/null
wait "$FRONT_PID" "$REGISTRY_PID" 2>/dev/null
run_container "$IT_DIR/run2.log" || die "the container does not start again"
code=$(curl -s -D "$IT_DIR/page2.h" -o "$IT_DIR/page2.md" -w '%{http_code}' --max-time 60 \
    "$CURL/images/library/python/3.7-slim?format=markdown")
check_eq "restarted on the same volume, registry gone: the page still answers 200" 200 "$code"
check "... from the cache (X-Imgmeta-Cache: hit), the same bytes" \
    bash -c "grep -qi '^X-Imgmeta-Cache: hit' '$IT_DIR/page2.h' && cmp -s '$IT_DIR/page.md' '$IT_DIR/page2.md'"
stop_container "$IT_DIR/run2.log"
check "no sanitizer report or crash in the container's output" \
    bash -c "! grep -aE 'Sanitizer|runtime error|Segmentation' '$IT_DIR'/run*.log"
stop_all
finish

#!/usr/bin/env bash
# container.sh [SOURCE_DIR] - `make container`: builds the Dockerfile with buildah
# into the local container storage (vfs driver, chroot isolation: no daemon, no
# overlay or user namespaces needed) as localhost/imgmeta:latest, and prints the
# image's size.
#
# The Dockerfile's base, debian:bookworm-slim, is pulled when a registry gives it.
# Where none can (a machine that reaches the Debian archive but no container
# registry), the base is made here instead: `debootstrap --variant=minbase
# bookworm` from the Debian archive (IMGMETA_DEBIAN_MIRROR, default
# http://deb.debian.org/debian), trimmed as the slim image is (no docs, man pages
# or locales; apt's lists and caches emptied), and imported under the name the
# Dockerfile uses, docker.io/library/debian:bookworm-slim, with the label
# org.imgmeta.base=debootstrap. The script says which of the two happened; a base
# already in the storage is used as it is (IMGMETA_REBASE=1 makes it anew).
#
# Bounds: the pull gets 120 s, debootstrap 15 minutes, the build 30 minutes; the
# untagged images of earlier builds are pruned after each build.
set -euo pipefail

src=$(cd "${1:-$(dirname "$0")/..}" && pwd)
image=localhost/imgmeta:latest
base=docker.io/library/debian:bookworm-slim
mirror=${IMGMETA_DEBIAN_MIRROR:-http://deb.debian.org/debian}
storage=(--storage-driver vfs)

say() { printf 'container: %s\n' "$*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
    say "needs root (buildah with the vfs driver and chroot isolation, debootstrap)"
    exit 1
fi
for tool in buildah podman debootstrap; do
    command -v "$tool" >/dev/null || { say "needs $tool (cmake/install-deps.sh container)"; exit 1; }
done

# make_base: debootstrap a minbase bookworm, trim it as the slim image is, and
# import it as $base.
make_base() {
    local root
    root=$(mktemp -d "${TMPDIR:-/tmp}/imgmeta-base.XXXXXX")
    # shellcheck disable=SC2064 # expand now: root is local
    trap "rm -rf '$root'" RETURN
    say "making $base with debootstrap --variant=minbase bookworm from $mirror"
    timeout 900 debootstrap --variant=minbase bookworm "$root/rootfs" "$mirror" \
        >"$root/debootstrap.log" 2>&1 || {
        tail -n 20 "$root/debootstrap.log" >&2
        say "debootstrap failed"
        return 1
    }
    local r=$root/rootfs
    # What the official slim image does: no documentation, man pages or
    # locales from later installs, apt's caches cleaned after each run.
    cat >"$r/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/man/*
EOF
    cat >"$r/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    rm -f "$r/etc/apt/sources.list"
    cat >"$r/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    find "$r/usr/share/doc" -mindepth 2 ! -name copyright ! -type d -delete 2>/dev/null || true
    find "$r/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias \
        -exec rm -rf {} + 2>/dev/null || true
    rm -rf "$r/usr/share/man"/* "$r/usr/share/info"/* "$r/var/lib/apt/lists"/* \
        "$r/var/cache/apt"/*.bin "$r/var/cache/apt/archives"/*.deb "$r/var/log"/*.log \
        "$r/tmp"/* "$r/root/.bash_history"
    : >"$r/etc/hostname"
    : >"$r/etc/resolv.conf"
    tar --numeric-owner -C "$r" -cf "$root/rootfs.tar" .
    podman "${storage[@]}" import --change 'CMD ["bash"]' \
        --change 'LABEL org.imgmeta.base=debootstrap' "$root/rootfs.tar" "$base" >/dev/null
}

origin=""
if [ "${IMGMETA_REBASE:-0}" != 1 ] &&
    buildah "${storage[@]}" inspect --type image "$base" >/dev/null 2>&1; then
    label=$(buildah "${storage[@]}" inspect --type image \
        --format '{{index .OCIv1.Config.Labels "org.imgmeta.base"}}' "$base" 2>/dev/null || true)
    origin="already in the local storage (${label:+made with }${label:-pulled})"
elif timeout 120 buildah "${storage[@]}" pull --policy always --quiet "$base" >/dev/null 2>&1; then
    origin="pulled from its registry"
else
    say "cannot pull $base (no registry access): making it from the Debian archive"
    make_base
    origin="made with debootstrap --variant=minbase from $mirror"
fi
say "base $base: $origin"

# The Dockerfile as it is; --pull=false: the base just checked is the one used.
# --layers keeps this build's stages for the next one; what earlier builds left
# untagged is pruned (vfs stores every layer as a full copy: disk stays bounded).
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
timeout 1800 buildah "${storage[@]}" bud --isolation chroot --pull=false --layers \
    -f "$src/Dockerfile" -t "$image" "$src" >&2
podman "${storage[@]}" image prune -f --filter "until=$started" >/dev/null ||
    say "could not prune the untagged images of earlier builds"
size=$(podman "${storage[@]}" image inspect --format '{{.Size}}' "$image")
say "built $image: $size bytes ($((size / 1024 / 1024)) MiB)"
printf '%s\n' "$image"

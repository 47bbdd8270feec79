# imgmeta container image: build on Debian bookworm, run on a slim bookworm with
# only the shared libraries the binary links, as a non-root user.
#
#   docker build -t imgmeta .
#   docker run --rm -p 8080:8080 -v imgmeta-cache:/var/cache/imgmeta imgmeta
#   curl -H 'Accept: text/markdown' http://127.0.0.1:8080/images/python/3.7-slim
#
# Extra flags go after the image name and replace CMD, e.g.
#   docker run ... imgmeta serve --listen 0.0.0.0:8080 --db /var/cache/imgmeta/cache.db \
#       --mirror docker.io=http://registry.internal:5000

# ---- build stage ------------------------------------------------------------
FROM debian:bookworm-slim AS build

ARG DEBIAN_FRONTEND=noninteractive
# libc6-dev is only a Recommends of gcc, so it is named explicitly.
# criterion is not installed: the tests are not built here (-DIMGMETA_TESTS=OFF).
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        cmake gcc libc6-dev make pkg-config \
        libmicrohttpd-dev libcurl4-openssl-dev libjansson-dev libsqlite3-dev libpq-dev zlib1g-dev \
        libssl-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# .dockerignore keeps host build trees (build*/), data/ and .git out of the context,
# so no stale CMakeCache.txt from the host can leak in.
COPY . .
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DIMGMETA_TESTS=OFF \
 && cmake --build build --parallel "$(nproc)"

# ---- runtime stage ----------------------------------------------------------
FROM debian:bookworm-slim

ARG DEBIAN_FRONTEND=noninteractive
# The runtime counterparts of the -dev packages above; ca-certificates for TLS to
# registries. No curl or wget: see the note on HEALTHCHECK below.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
        libmicrohttpd12 libcurl4 libjansson4 libsqlite3-0 libpq5 zlib1g libssl3 ca-certificates \
 && rm -rf /var/lib/apt/lists/*

# A system user without a login shell; the cache directory exists and belongs to it
# before VOLUME is declared, so a fresh named volume is created with that owner.
RUN useradd --system --user-group --no-create-home \
        --home-dir /var/cache/imgmeta --shell /usr/sbin/nologin imgmeta \
 && install -d -o imgmeta -g imgmeta -m 0750 /var/cache/imgmeta

COPY --from=build /src/build/imgmeta /usr/local/bin/imgmeta
# Fail the build, not the first start, when a runtime library is missing above.
RUN ! ldd /usr/local/bin/imgmeta | grep 'not found'

VOLUME /var/cache/imgmeta
EXPOSE 8080

# No HEALTHCHECK: the image carries no HTTP client (curl/wget) to probe with, and
# adding one only for that would grow the attack surface. Orchestrators should probe
# GET /healthz (liveness) and GET /readyz (readiness) over HTTP themselves, e.g. a
# Kubernetes httpGet probe on port 8080.

# The daemon stops cleanly on SIGTERM (Docker's default stop signal).
USER imgmeta
WORKDIR /var/cache/imgmeta
ENTRYPOINT ["imgmeta"]
CMD ["serve", "--listen", "0.0.0.0:8080", "--db", "/var/cache/imgmeta/cache.db"]

# syntax=docker/dockerfile:1
#
# The Sightline server image: compiled in the official Rust image, run from
# Debian slim with only the `sightline` binary and what it calls at run time.
#
#   docker build -t sightline .
#   docker run -p 8002:8002 -e SIGHTLINE_JWT_SECRET=... -e SIGHTLINE_ADMIN_TOKEN=... \
#     -v sightline-data:/data sightline
#
# The cache mounts below need BuildKit: the default builder of Docker Engine
# 23 and later and of `docker compose`; with the old `docker-compose` 1.x,
# set DOCKER_BUILDKIT=1 COMPOSE_DOCKER_CLI_BUILD=1. See docs/operations.md
# ("Containers").

ARG RUST_VERSION=1
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
WORKDIR /src
# Only what the binary is built from: the workspace manifests and sources.
# Tests, benchmarks, docs and the fuzz workspace stay out of this stage.
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
COPY src ./src
# The registry and the target directory are BuildKit caches, so a rebuild
# after a source change recompiles Sightline's crates, not every dependency.
# The binary is copied out of the cache in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p sightline --bin sightline \
    && install -m 0755 target/release/sightline /usr/local/bin/sightline

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# espeak-ng: the offline text-to-speech of GET /api/tts runs the espeak-ng
#   command (crates/sightline-speech); SIGHTLINE_TTS_PROVIDER=elevenlabs or
#   off does without it.
# ca-certificates: the system roots, for curl and anything run in the
#   container (Sightline's own TLS clients carry the Mozilla roots inside
#   the binary).
# curl: the health check below (the slim image has no HTTP client).
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        ca-certificates curl espeak-ng \
    && rm -rf /var/lib/apt/lists/*
# A fixed numeric user, so orchestrators can check it is not root; /data is
# its data directory (embedded store, user token signing key). A named
# volume mounted there starts with this ownership; a host directory mounted
# there must be writable by uid 10001.
RUN groupadd --system --gid 10001 sightline \
    && useradd --system --uid 10001 --gid sightline --home-dir /data \
        --no-create-home --shell /usr/sbin/nologin sightline \
    && install -d -o sightline -g sightline -m 0750 /data
COPY --from=build /usr/local/bin/sightline /usr/local/bin/sightline

ENV SIGHTLINE_BIND=0.0.0.0:8002 \
    SIGHTLINE_DATA_DIR=/data
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8002
USER 10001:10001

# Ready only while the store answers (GET /ready). The port comes from
# SIGHTLINE_BIND; with SIGHTLINE_TLS_CERT set the server speaks HTTPS (its
# certificate is not for 127.0.0.1, hence -k).
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD bind="${SIGHTLINE_BIND:-0.0.0.0:8002}"; scheme=http; \
        [ -z "$SIGHTLINE_TLS_CERT" ] || scheme=https; \
        curl -fsSk --max-time 2 -o /dev/null "$scheme://127.0.0.1:${bind##*:}/ready" || exit 1

# SIGTERM stops the server gracefully (open connections get up to 10 s):
# give the container a stop timeout above that (compose: stop_grace_period).
STOPSIGNAL SIGTERM
ENTRYPOINT ["sightline"]
CMD ["serve"]

LABEL org.opencontainers.image.title="Sightline" \
      org.opencontainers.image.description="Cloud runtime for smart glasses (MentraOS cloud protocol)" \
      org.opencontainers.image.licenses="Apache-2.0"

# Governor's image: the `governor` binary in a runtime holding nothing else but
# the C libraries it loads, CA certificates and a non-root user (65532); no
# shell, no package manager. image/rootfs.sh lays out that runtime's files.
#
#   image/build.sh                      # this file's default target, then the size
#   buildah build -t ghcr.io/governor-dev/governor:0.1.0 .    # or docker build
#
# Targets:
#   runtime (the default, last) compiles the workspace in the Rust builder image
#     (RUST_IMAGE) and lays out the runtime there: 54 min cold on 2 busy cores.
#   prebuilt wraps a binary built elsewhere: its build context is a folder
#     holding rootfs/, made by image/rootfs.sh on the machine that built the
#     binary (image/build.sh --prebuilt BINARY does both); the test suite uses it.
# Both finish on the `base` stage, so the user, entrypoint and labels are one.

ARG RUST_IMAGE=docker.io/library/rust:1.95-slim-bookworm

FROM scratch AS base
ARG GOVERNOR_VERSION=0.1.0
ARG GOVERNOR_GIT_COMMIT=unknown
LABEL org.opencontainers.image.title="governor" \
      org.opencontainers.image.description="Governor: an SLO autopilot for Kubernetes (operator, dashboard and CLI)" \
      org.opencontainers.image.version="${GOVERNOR_VERSION}" \
      org.opencontainers.image.revision="${GOVERNOR_GIT_COMMIT}" \
      org.opencontainers.image.source="https://github.com/governor-dev/governor" \
      org.opencontainers.image.url="https://github.com/governor-dev/governor" \
      org.opencontainers.image.licenses="Apache-2.0"
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/governor"]

FROM base AS prebuilt
COPY rootfs/ /

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
# The context has no .git: operator/build.rs takes the commit from here.
ARG GOVERNOR_GIT_COMMIT=unknown
RUN GOVERNOR_GIT_COMMIT="${GOVERNOR_GIT_COMMIT}" cargo build --release --locked -p governor --bin governor \
 && bash image/rootfs.sh target/release/governor /rootfs

FROM base AS runtime
COPY --from=build /rootfs/ /

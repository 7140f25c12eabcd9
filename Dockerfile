# The tmdbsync image: the operator (`tmdbsync controller`) and the run Jobs' workers
# (`tmdbsync worker <stage>`) are the same static binary. The Helm chart's default image
# (ghcr.io/tmdbsync/tmdbsync:<appVersion>) is built from this file:
#
#   docker build -t ghcr.io/tmdbsync/tmdbsync:0.1.0 .
#
# Not built in this repository's CI: the development machines have no Docker engine, so this file
# is kept deliberately plain. The tests run the same binary as local processes instead
# (docs/testenv.md).

# Builder: Alpine's Rust targets musl, which links statically by default (no glibc, no libssl:
# TLS is rustls with ring, whose C parts build with the musl toolchain).
FROM rust:1.95-alpine AS builder
RUN apk add --no-cache musl-dev
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
# The workspace's other member (test tools, not built here): cargo reads its manifest.
COPY testenv ./testenv
# crt-static is musl's default; spelled out so the binary never needs a libc in the image.
ENV RUSTFLAGS="-C target-feature=+crt-static"
RUN cargo build --release --locked -p tmdbsync --bin tmdbsync \
    && cp target/release/tmdbsync /tmdbsync

# Runtime: no shell, no package manager, CA certificates and /etc/passwd for nonroot only.
FROM gcr.io/distroless/static:nonroot
COPY --from=builder /tmdbsync /usr/local/bin/tmdbsync
# distroless' nonroot user; the chart's pods also set runAsUser 65532 and a read-only root fs.
USER 65532:65532
EXPOSE 8080
# Jobs and the chart pass only arguments (`controller ...`, `worker bulk`).
ENTRYPOINT ["/usr/local/bin/tmdbsync"]

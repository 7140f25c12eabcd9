# The tmdbsync image: the operator (`tmdbsync controller`) and the run Jobs' workers
# (`tmdbsync worker <stage>`) are the same static binary. The Helm chart's default image
# (ghcr.io/tmdbsync/tmdbsync:<appVersion>) is built from this file by a registry's builder:
#
#   docker build -t ghcr.io/tmdbsync/tmdbsync:0.1.0 .
#
# On a machine without a registry, scripts/build-image.sh builds the same image with podman: it
# runs the same scripts/image-rootfs.sh on the host instead of in the builder stage, and takes the
# runtime stage below verbatim from this file (everything after `FROM scratch AS runtime`, with
# the `COPY --from=builder` line reading the host's root filesystem instead). Keep that stage
# self-contained: no other stage may follow it.

# Builder: Debian bookworm's glibc (2.36), as on the machines where scripts/build-image.sh runs.
# image-rootfs.sh links the binary statically (+crt-static) and writes /rootfs.
FROM rust:1.95-bookworm AS builder
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
# The workspace's other member (test tools, not built here): cargo reads its manifest.
COPY testenv ./testenv
COPY scripts/image-rootfs.sh ./scripts/image-rootfs.sh
RUN bash scripts/image-rootfs.sh /rootfs

# Runtime: no shell, no package manager, no libc; the binary, CA certificates, /etc/passwd with
# nonroot (65532) and /etc/nsswitch.conf.
FROM scratch AS runtime
LABEL org.opencontainers.image.title=tmdbsync
COPY --from=builder /rootfs/ /
# The chart's and the Jobs' pods also set runAsUser 65532, a read-only root filesystem and no
# capabilities.
USER 65532:65532
EXPOSE 8080
# Jobs and the chart pass only arguments (`controller ...`, `worker bulk`).
ENTRYPOINT ["/usr/local/bin/tmdbsync"]

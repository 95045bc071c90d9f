# syntax=docker/dockerfile:1.7
# Multi-stage build: compile with the official Rust image (registry, git and target dirs in BuildKit
# cache mounts, so rebuilds only compile what changed), ship only the binary on distroless. The
# production build leaves the simulators, `demo` and `bench` out (Cargo feature `dev-tools`).
ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS builder
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --no-default-features --bin reteach-personio-operator \
 && install -D -m 0755 target/release/reteach-personio-operator /out/reteach-personio-operator \
 && strip --strip-unneeded /out/reteach-personio-operator
# The SBOM of exactly this build (CycloneDX, from cargo metadata/tree; scripts/sbom.py).
ARG REVISION=unknown
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    (command -v python3 >/dev/null || (apt-get update -qq && apt-get install -y -qq --no-install-recommends python3)) \
 && python3 scripts/sbom.py --revision "${REVISION}" --output /out/sbom.cdx.json

# cc (glibc + libgcc) rather than static: the binary links glibc dynamically; TLS is rustls with the
# webpki roots compiled in, so no OpenSSL and no CA bundle are needed in the image.
# scripts/build-image.sh builds the same layout without a registry (buildah from scratch, the
# binary's ldd libraries, the nonroot user); CI builds and runs that one on a real node.
FROM gcr.io/distroless/cc-debian12:nonroot
ARG VERSION=0.2.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="reteach-personio-operator" \
      org.opencontainers.image.description="Syncs Personio employees into reteach and reteach certificates into Personio" \
      org.opencontainers.image.source="https://github.com/reteach/reteach-personio-operator" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      io.reteach.sbom.path="/usr/share/doc/reteach-personio-operator/sbom.cdx.json" \
      io.reteach.sbom.format="CycloneDX-1.5"
COPY --from=builder /out/reteach-personio-operator /usr/local/bin/reteach-personio-operator
COPY --from=builder /out/sbom.cdx.json /usr/share/doc/reteach-personio-operator/sbom.cdx.json
# The distroless "nonroot" user; the Helm chart enforces the same uid.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/reteach-personio-operator"]
CMD ["run", "--log-format=json"]

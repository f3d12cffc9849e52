# rolegate for builders that can pull the rust image (docker buildx, kaniko): the same image as
# scripts/image.sh builds from Containerfile, a static binary FROM scratch as user 65532; this file
# adds only the build stage. CI builds and runs the image with scripts/image.sh (no registry there).
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY benches benches
RUN RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --locked \
      --target x86_64-unknown-linux-gnu --bin rolegate \
    && cp target/x86_64-unknown-linux-gnu/release/rolegate /rolegate

FROM scratch
ARG VERSION
LABEL org.opencontainers.image.title="rolegate" \
      org.opencontainers.image.source="https://github.com/rolegate/rolegate" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=build /rolegate /rolegate
USER 65532:65532
EXPOSE 8443 8080
ENTRYPOINT ["/rolegate"]
CMD ["run"]

# rolegate: controller + admission webhook, one binary. Multi-stage: build with the Rust toolchain,
# run on distroless as non-root. (Not buildable on the project's CI machines, which have no Docker
# engine; kept conventional.)
FROM rust:1.95-bookworm AS build
WORKDIR /src
# Dependencies first, so source edits reuse the cached layer.
COPY Cargo.toml Cargo.lock ./
RUN mkdir src benches && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && echo 'fn main() {}' > benches/check.rs && echo 'fn main() {}' > benches/webhook.rs \
    && cargo build --release --locked || true
COPY src src
COPY crds crds
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin rolegate

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/rolegate /rolegate
USER 65532:65532
EXPOSE 8443 8080
ENTRYPOINT ["/rolegate"]
CMD ["run"]

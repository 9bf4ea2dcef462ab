# Multi-stage build: compile with the full Rust toolchain, ship a small Debian image that runs
# portal-migrate as a non-root user with its state on a volume.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY migrations ./migrations
COPY config ./config
COPY tests/fixtures ./tests/fixtures
RUN cargo build --release --locked && strip target/release/portal-migrate

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/portal-migrate --create-home portal-migrate
COPY --from=build /src/target/release/portal-migrate /usr/local/bin/portal-migrate
COPY config/default.toml /etc/portal-migrate/default.toml
USER portal-migrate
WORKDIR /var/lib/portal-migrate
VOLUME ["/var/lib/portal-migrate"]
ENTRYPOINT ["portal-migrate"]
CMD ["run", "--config", "/etc/portal-migrate/config.toml"]

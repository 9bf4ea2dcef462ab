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
# /healthz, /readyz, /metrics and the status page, on all interfaces of the container (the
# default 127.0.0.1 would be unreachable from outside it); publish with -p 9464:9464.
EXPOSE 9464
ENV PORTAL_MIGRATE__SERVICE__LISTEN=0.0.0.0:9464
# bookworm-slim has no curl; bash's /dev/tcp speaks just enough HTTP for a liveness probe.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9464 && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '"]
# SIGTERM (docker stop) finishes tasks in flight within workers.shutdown_grace_secs; give
# docker stop a longer --time (e.g. docker stop -t 60) than that grace.
STOPSIGNAL SIGTERM
ENTRYPOINT ["portal-migrate"]
CMD ["run", "--config", "/etc/portal-migrate/config.toml"]

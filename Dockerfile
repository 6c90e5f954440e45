# syntax=docker/dockerfile:1
# Accord's container image: built from this repository with the pinned
# dependencies (Cargo.lock), without the development feature, and run as
# an unprivileged user on a minimal Debian base. The root filesystem can
# be read-only: Accord writes only to its data directory (/var/lib/accord,
# a volume) and its temporary directory (mount a tmpfs at /tmp).
#
#   docker build -t accord .
#   docker run --read-only --tmpfs /tmp -v accord-data:/var/lib/accord \
#     -v ./tls:/etc/accord/tls:ro -p 50051:50051 accord

FROM rust:1.95-bookworm AS build
# npm: the web console's GOV.UK Frontend is installed from the npm registry
# at build time (console/package-lock.json) and built into the binary.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends nodejs npm \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --no-default-features \
 && cp target/release/accord /accord

FROM debian:bookworm-slim
# CA certificates, for an OTLP collector or a JWKS behind HTTPS.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/accord \
      --shell /usr/sbin/nologin accord \
 && mkdir -p /var/lib/accord \
 && chown accord:accord /var/lib/accord
COPY --from=build /accord /usr/local/bin/accord
COPY deploy/accord.example.toml /etc/accord/accord.example.toml
USER 10001:10001
WORKDIR /var/lib/accord
ENV ACCORD_DATA_DIR=/var/lib/accord \
    ACCORD_LISTEN=0.0.0.0:50051 \
    ACCORD_METRICS_LISTEN=0.0.0.0:9464 \
    ACCORD_LOG_FORMAT=json
VOLUME ["/var/lib/accord"]
# 50051: gRPC over mutual TLS. 9464: metrics, liveness and readiness over
# plain HTTP; publish it only to the scraper's network.
EXPOSE 50051 9464
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/accord", "probe"]
ENTRYPOINT ["/usr/local/bin/accord"]
CMD ["serve"]

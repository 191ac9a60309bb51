# Multi-stage build of the `seatgrid` binary: a cached dependency layer, then a slim runtime image.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release -p seatgrid && cp target/release/seatgrid /usr/local/bin/seatgrid

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /usr/local/bin/seatgrid /usr/local/bin/seatgrid
ENV SEATGRID_LISTEN=0.0.0.0:5000 LOG_FORMAT=json
EXPOSE 5000
HEALTHCHECK --interval=5s --timeout=3s CMD curl -sf http://127.0.0.1:5000/health/live || exit 1
ENTRYPOINT ["seatgrid"]
CMD ["serve", "--seed-demo"]

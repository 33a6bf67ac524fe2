# Build kb and ship it with the default local embedding model.
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends python3-pip && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN ./scripts/fetch-model.sh && cargo build --release --locked --bin kb

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/kb /usr/local/bin/kb
COPY --from=build /src/models /opt/kb/models
ENV KB__EMBEDDER__LOCAL__MODEL_DIR=/opt/kb/models/all-MiniLM-L6-v2
WORKDIR /data
ENTRYPOINT ["kb"]

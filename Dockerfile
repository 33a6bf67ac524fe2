# Build kb and ship it with the default local embedding model.
FROM rust:1.95-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends python3-pip && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN ./scripts/fetch-model.sh && cargo build --release --locked --bin kb

FROM debian:bookworm-slim
# Tesseract (English, Simplified Chinese, orientation) and poppler's pdftoppm: OCR of scans.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
        tesseract-ocr tesseract-ocr-eng tesseract-ocr-chi-sim tesseract-ocr-osd poppler-utils \
    && rm -rf /var/lib/apt/lists/*
# kb runs as its own user, not root. /data (the catalog with every chunk's text, the embedded
# index, server.json with the admin token) is that user's only: a named volume mounted there
# starts with this owner and mode.
RUN useradd --system --user-group --home-dir /data --no-create-home --shell /usr/sbin/nologin kb \
    && install -d -o kb -g kb -m 0700 /data
COPY --from=build /src/target/release/kb /usr/local/bin/kb
COPY --from=build /src/models /opt/kb/models
ENV KB__EMBEDDER__LOCAL__MODEL_DIR=/opt/kb/models/all-MiniLM-L6-v2
USER kb
WORKDIR /data
EXPOSE 8080
ENTRYPOINT ["kb"]

# vidsearch: one image for every application service (workers, writer, Flower, metrics,
# backfill, sandbox); the service's command picks the role. Entrypoint: the `vidsearch` command.
#   docker build -t vidsearch .
#   docker run --rm --env-file .env vidsearch jobs

# --- build: compilers only here (a dependency without a wheel for this platform builds here) ----
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
COPY workers ./workers
COPY sandbox ./sandbox
COPY vidsearch ./vidsearch
RUN pip install --prefix=/install .

# --- runtime ----------------------------------------------------------------------------------------
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIDSEARCH_DATA_DIR=/data \
    VIDSEARCH_LOG_FORMAT=json
COPY --from=build /install /usr/local
RUN groupadd --system --gid 10001 vidsearch \
 && useradd --system --uid 10001 --gid vidsearch --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin vidsearch \
 && mkdir -p /app /data /manifests \
 && chown vidsearch:vidsearch /data
WORKDIR /app
# Example configuration and the beat schedule example (`vidsearch beat --schedule config/beat_schedule.py`).
COPY config ./config
USER vidsearch:vidsearch
ENTRYPOINT ["vidsearch"]
CMD ["--help"]

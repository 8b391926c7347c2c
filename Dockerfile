# One image for web, worker and beat (docker-compose.yml picks the command).
FROM python:3.11-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /srv/cellabel
COPY pyproject.toml README.md alembic.ini ./
COPY app app
COPY workers workers
COPY migrations migrations
COPY templates templates
COPY static static
RUN pip install --no-cache-dir .
ENV MEDIA_ROOT=/data/media DATA_DIR=/data
EXPOSE 8000
CMD ["cellabel", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "4"]

# The production image: web, media, sweeper and the task worker all run from it
# (docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 showfloor
WORKDIR /app

COPY pyproject.toml README.md ./
COPY config ./config
COPY realtime ./realtime
COPY shows ./shows
COPY checkout ./checkout
COPY live ./live
COPY frontend ./frontend
# The compiled message catalogues (LOCALE_PATHS); a fresh clone needs no gettext.
COPY locale ./locale
COPY manage.py ./
RUN pip install .

# Static files are collected at build time and served by WhiteNoise; the
# placeholder secrets only let the production settings load for this step.
RUN SHOWFLOOR_ENV=production SECRET_KEY=collectstatic-only \
    DATABASE_URL=sqlite:////tmp/unused.sqlite3 REDIS_URL=redis://unused:6379/0 \
    STATIC_ROOT=/app/static python manage.py collectstatic --noinput \
    && mkdir -p /app/var && chown -R showfloor /app/var

USER showfloor
ENV SHOWFLOOR_ENV=production \
    STATIC_ROOT=/app/static
EXPOSE 8000
CMD ["daphne", "-e", "tcp:port=8000:interface=0.0.0.0:backlog=1024", "--proxy-headers", "config.asgi:application"]

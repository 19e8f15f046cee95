# syntax=docker/dockerfile:1.7
#
# Auth service image. One image, three roles, chosen by the command:
#   API (default):  gunicorn -c gunicorn.conf.py auth_microservice_app.wsgi:app
#   worker:         celery -A auth_microservice_app.tasks worker --loglevel=INFO
#   migration job:  flask --app auth_microservice_app.app db upgrade
#
# Build: docker build -t auth-service:$(git describe --tags --always) \
#          --build-arg VERSION=... --build-arg VCS_REF=$(git rev-parse HEAD) .
# Needs BuildKit (the default builder since Docker 23) for the cache and bind mounts.

ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------------------
# Builder: resolves the lock file into wheels. Nothing from this stage but /wheels
# reaches the runtime image, so Poetry and the compiler stay out of it.
# ---------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ARG POETRY_VERSION=2.5.1
ARG POETRY_PLUGIN_EXPORT_VERSION=1.10.1

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

# A compiler for any dependency that publishes only an sdist with C code.
# DL3008 (pin apt versions) is ignored on purpose: this stage is thrown away, and exact
# Debian versions vanish from the mirrors after each point release, breaking rebuilds.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

# Poetry lives in its own venv so it cannot leak into the wheels it exports.
RUN python -m venv /opt/poetry \
    && /opt/poetry/bin/pip install \
        "poetry==${POETRY_VERSION}" \
        "poetry-plugin-export==${POETRY_PLUGIN_EXPORT_VERSION}"

WORKDIR /src
COPY pyproject.toml poetry.lock ./

# `poetry export` refuses a lock that no longer matches pyproject.toml, and the exported
# file pins every runtime dependency with its hashes, which `pip wheel` then enforces.
RUN /opt/poetry/bin/poetry export --only main --format requirements.txt \
        --output requirements.txt \
    && pip wheel --require-hashes --wheel-dir /wheels --requirement requirements.txt

# ---------------------------------------------------------------------------------------
# Runtime: Python, the locked dependencies and the application source. No compiler, no
# Poetry, no build tools; runs as an unprivileged user with a fixed uid/gid.
# ---------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ARG PYTHON_IMAGE
ARG VERSION=0.1.0
ARG VCS_REF=unknown
ARG BUILD_DATE=unknown
ARG SOURCE_URL=unknown

LABEL org.opencontainers.image.title="auth-service" \
      org.opencontainers.image.description="Authentication microservice: accounts, sessions, asymmetric JWTs with JWKS, 2FA, OAuth" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.created="${BUILD_DATE}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.base.name="${PYTHON_IMAGE}"

# MALLOC_ARENA_MAX: glibc would give each thread that allocates a malloc arena of its own (up
# to 8 per core), and an arena keeps what it once held. argon2's 19 MiB are already confined to
# ARGON2_MAX_CONCURRENT hash threads per worker (utils/security.py); two arenas per process also
# keep the request threads' other large buffers from settling in one arena each.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    MALLOC_ARENA_MAX=2 \
    APP_ENV=production \
    HOST=0.0.0.0 \
    PORT=8000

# uid/gid 10001: fixed so Kubernetes runAsUser/fsGroup and volume ownership can rely on
# it, and above the range a host's own users get, so it maps to nobody there.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin app

# Install from the builder's wheels through a bind mount, so the wheel files never
# become a layer. setuptools and wheel are not needed at run time and only widen what a
# scanner (and an attacker) finds; `pip check` fails the build on an inconsistent set.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --no-deps /wheels/*.whl \
    && pip uninstall --yes setuptools wheel \
    && pip check

WORKDIR /app

# The source is owned by root and read-only for the app user: a compromised process
# cannot rewrite the code it runs. Only instance/ (development key material) is writable.
COPY --chown=root:root gunicorn.conf.py ./
COPY --chown=root:root migrations/ ./migrations/
COPY --chown=root:root auth_microservice_app/ ./auth_microservice_app/
# Bytecode compiled now, because at run time nothing may be written (read-only root).
RUN python -m compileall -q migrations auth_microservice_app \
    && install --directory --owner=app --group=app --mode=0750 /app/instance

USER 10001:10001

EXPOSE 8000

# Liveness only: readiness (/health) also checks the database, and a database outage
# must not make Docker restart every API container. Kubernetes ignores HEALTHCHECK and
# uses the probes in infrastructure/kubernetes/deployment.yaml instead. The probe says it
# came through TLS (X-Forwarded-Proto), as the ingress does, because staging and production
# redirect plain-HTTP requests to https.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request as u; r = u.urlopen(u.Request('http://127.0.0.1:%s/health/live' % os.environ.get('PORT', '8000'), headers={'X-Forwarded-Proto': 'https'}), timeout=4); sys.exit(r.status != 200)"]

CMD ["gunicorn", "--config", "gunicorn.conf.py", "auth_microservice_app.wsgi:app"]

# release-bot container: hermetic dependencies (hash-checked lock), non-root, health-checked.
#
# The base is pinned by digest: the tag alone could change under us. To move to a newer base, resolve
# the tag's current digest (`docker buildx imagetools inspect python:3.11-slim-bookworm`) and replace
# PYTHON_IMAGE below in one reviewed change.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:2e32f7d302adc1c37428355c1e646897c0c53f4fd60b6a551245fb90ee129f91

# ---- builder: the virtualenv, from the lock only --------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY requirements.lock ./
# Every distribution (runtime deps and the setuptools/wheel that build the project) must match a
# sha256 in the lock; --no-deps: the lock is complete, nothing is resolved here.
RUN /opt/venv/bin/pip install --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY commands ./commands
# The project itself: built with the locked setuptools, nothing fetched.
RUN /opt/venv/bin/pip install --no-deps --no-build-isolation --no-index . \
    && /opt/venv/bin/pip check

# ---- runtime ---------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
# git: release notes read commits from local repositories and the manifest is committed with it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 releasebot \
    && useradd --system --uid 10001 --gid 10001 --home-dir /home/releasebot --create-home releasebot \
    && mkdir -p /data \
    && chown releasebot:releasebot /data
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PORT=3000 \
    RELEASEBOT_CONFIG=/config/releasebot.yml \
    RELEASEBOT_DB=/data/releasebot.db
WORKDIR /home/releasebot
USER 10001:10001
VOLUME ["/data"]
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:3000/healthz',timeout=3).status==200 else 1)"]
ENTRYPOINT ["release-bot"]
CMD ["serve"]

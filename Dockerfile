# syntax=docker/dockerfile:1
# Carewire's container image (docs/install.md, "Container"). Build from the repository root:
#   docker build -t carewire:local .
#   docker compose -f deploy/compose.yaml up -d
# The image holds the wheel installed in a venv (/opt/carewire) and runs as the unprivileged
# user carewire (uid 10001). State lives in three volumes, as on a server (docs/install.md):
#   /var/lib/carewire        the data directory (configuration, certificates, SQLite database)
#   /var/lib/carewire-keys   the key-encryption and audit keys (back them up apart from the data)
#   /var/lib/carewire-audit  the signed audit checkpoints

# The base is pinned to a Debian release: the runtime stage's library package names below
# are bookworm's. Pin it by digest too (python:3.11-slim-bookworm@sha256:…) in your registry.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# The LDAP client (bonsai) builds against the OpenLDAP and Cyrus SASL headers.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential libldap2-dev libsasl2-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# The wheel first (what `pip install carewire` installs on a server), then the venv from it.
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && python -m venv /opt/carewire \
    && /opt/carewire/bin/pip install --no-cache-dir /wheels/carewire-*.whl

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="Carewire" \
      org.opencontainers.image.description="Secure clinical communication server: XMPP, HTTPS console and REST API"
# Run-time libraries of the LDAP client; no compiler in the final image.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libldap-2.5-0 libsasl2-2 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 carewire \
    && useradd --system --uid 10001 --gid carewire --home-dir /var/lib/carewire \
       --no-create-home --shell /usr/sbin/nologin carewire \
    && install -d -o carewire -g carewire -m 0700 \
       /var/lib/carewire /var/lib/carewire-keys /var/lib/carewire-audit
COPY --from=build /opt/carewire /opt/carewire
# Clients reach the server from outside the container: listen on every address (the
# configuration file's server.bind is overridden); `carewire health` then probes loopback.
ENV PATH=/opt/carewire/bin:$PATH \
    CAREWIRE_DATA_DIR=/var/lib/carewire \
    CAREWIRE_SERVER_BIND=0.0.0.0 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
VOLUME ["/var/lib/carewire", "/var/lib/carewire-keys", "/var/lib/carewire-audit"]
WORKDIR /var/lib/carewire
USER 10001:10001
# XMPP clients (STARTTLS), XMPP clients (direct TLS), HTTPS (console, API, WebSocket), and
# federation (STARTTLS, direct TLS), which listens only with [s2s] enabled = true.
EXPOSE 5222 5223 8443 5269 5270
# Asks the running server's HTTPS /healthz (exit 0 healthy, 1 not).
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["carewire", "health", "--quiet", "--timeout", "5"]
# `docker run … carewire:TAG init --domain chat.hospital.example` once, then `serve`.
ENTRYPOINT ["carewire"]
CMD ["serve"]

# One image for the four JMDI services and the gateway; SERVICE picks which one runs (calls, grants, notifications,
# reporting, gateway).
#   docker build -t jmdi .
#   docker run -e SERVICE=grants -e AMQP_URI=... -e GRANTS_DATABASE_URL=... jmdi
# services.common.launch.runner waits for the broker, applies the service's Alembic migrations, then runs nameko.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LOG_FORMAT=json \
    SERVICE=calls

RUN groupadd --system --gid 10001 jmdi \
 && useradd --system --uid 10001 --gid jmdi --home-dir /app --shell /usr/sbin/nologin jmdi

WORKDIR /app

# psycopg2-binary ships wheels, so no compiler or libpq-dev is needed.
COPY pyproject.toml ./
COPY services ./services
COPY jmdi ./jmdi
# key volumes (docker-compose.yml) take these folders' owner: the service user, no one else
RUN pip install . \
 && mkdir -p /keys/issuer /keys/jwks /keys/reporting /keys/notifications /run/jmdi/jwks /run/jmdi/key \
 && chmod 700 /keys/issuer /keys/reporting /keys/notifications /run/jmdi/key \
 && chown -R jmdi:jmdi /app /keys /run/jmdi

USER 10001:10001

# The gateway's staff API on 8000; Prometheus /metrics: calls 8001, grants 8002, notifications 8003, reporting 8004,
# gateway 8005 (METRICS_PORT).
EXPOSE 8000 8001 8002 8003 8004 8005

# Shell form on purpose so ${SERVICE} is expanded; exec keeps the runner as PID 1 and lets it get SIGTERM.
CMD exec python -m services.common.launch.runner "${SERVICE}"

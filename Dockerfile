# One image for the four JMDI services; SERVICE picks which one runs (calls, grants, notifications, reporting).
#   docker build -t jmdi .
#   docker run -e SERVICE=grants -e AMQP_URI=... -e GRANTS_DATABASE_URL=... jmdi
# services.common.runner waits for the broker, applies the service's Alembic migrations, then runs nameko.
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
RUN pip install . \
 && chown -R jmdi:jmdi /app

USER 10001:10001

# Prometheus /metrics: calls 8001, grants 8002, notifications 8003, reporting 8004 (METRICS_PORT).
EXPOSE 8001 8002 8003 8004

# Shell form on purpose so ${SERVICE} is expanded; exec keeps the runner as PID 1 and lets it get SIGTERM.
CMD exec python -m services.common.runner "${SERVICE}"

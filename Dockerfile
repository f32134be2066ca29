# One image for docker-compose.yml: the worker (the default command), client.py, the one-shot
# set-up of the demo's AWS resources in moto (local/compose_setup.py) and the data plane
# (local/data_plane: the sample game servers, HAProxy and Prometheus). It is also a starting point
# for a production worker image (which needs neither local/, sample_service/, HAProxy nor
# Prometheus).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# HAProxy: the local data plane's load balancer, and Prometheus scraping it (docker-compose.yml's
# data-plane service).
RUN apt-get update \
    && apt-get install -y --no-install-recommends haproxy prometheus \
    && rm -rf /var/lib/apt/lists/*

# The dependencies first, in their own layer: they change less often than the code. The exact
# versions that were tested (requirements.lock, from pyproject.toml's ranges by `make lock`).
COPY requirements.lock requirements-dev.lock ./
RUN pip install -r requirements.lock
# The sample game servers speak WebSocket: websockets at the version tested (a dev dependency,
# which a production worker image leaves out).
RUN pip install "$(grep '^websockets==' requirements-dev.lock)"

# The code: everything .dockerignore lets through (no tests, benchmarks, virtualenv or state).
COPY . .

# /demo: where the compose file's `demo` volume holds the generated deploy.toml; a new named
# volume takes this directory's owner, so the unprivileged user can write it. /app/.local:
# the data plane's logs, HAProxy's config and Prometheus's data.
RUN useradd --system --no-create-home worker \
    && mkdir /demo /app/.local \
    && chown worker /demo /app/.local
USER worker

# Connection settings come from the environment: TEMPORAL_ADDRESS, AWS_*, BLUEGREEN_TASK_QUEUE.
CMD ["python", "worker.py"]

# The worker, for docker-compose.yml (and as a starting point for a production image).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The dependencies first, in their own layer: they change less often than the code.
# (pyproject.toml declares no packages: `pip install .` installs the dependencies only.)
COPY pyproject.toml README.md ./
RUN pip install .

COPY models/ models/
COPY activities/ activities/
COPY workflows/ workflows/
COPY cli/ cli/
COPY worker.py client.py ./

RUN useradd --system --no-create-home worker
USER worker

# Connection settings come from the environment: TEMPORAL_ADDRESS, AWS_*, BLUEGREEN_TASK_QUEUE.
CMD ["python", "worker.py"]

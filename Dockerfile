# syntax=docker/dockerfile:1
# Build: docker build -t aitrust:dev .   (no Docker engine runs on our CI; see README)
FROM python:3.11.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml requirements.lock README.md ./
COPY operator ./operator
RUN python -m pip install --no-cache-dir --upgrade pip==25.3 \
 && python -m pip wheel --no-cache-dir --wheel-dir /wheels -c requirements.lock .

FROM python:3.11.11-slim-bookworm
RUN groupadd --system --gid 65532 aitrust \
 && useradd --system --uid 65532 --gid 65532 --home-dir /nonexistent --shell /usr/sbin/nologin aitrust
COPY --from=build /wheels /wheels
RUN python -m pip install --no-cache-dir --no-index --find-links /wheels /wheels/aitrust-*.whl \
 && rm -rf /wheels
COPY policies /opt/aitrust/policies
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 TMPDIR=/tmp AITRUST_POLICY_DIR=/opt/aitrust/policies
USER 65532:65532
ENTRYPOINT ["aitrust", "run"]

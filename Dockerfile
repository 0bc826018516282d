# The image the Helm chart runs (charts/reconciler: `operator` and `serve` as arguments to the
# entrypoint). Built and published by .github/workflows/release.yml on a version tag. The install
# step is docker/install.sh, which tests/distribution/test_docker.py runs without a container daemon.
FROM python:3.11-slim AS build
# uv at the version that requirements/dev.txt pins (a test keeps the two equal)
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /usr/local/bin/uv
# the root filesystem is read-only at run time: compile the bytecode now
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy
WORKDIR /src
COPY pyproject.toml README.md ./
COPY requirements/image.txt requirements/image.txt
COPY docker/install.sh docker/install.sh
COPY schemas schemas
COPY reconciler reconciler
RUN sh docker/install.sh /opt/reconciler

FROM python:3.11-slim
COPY --from=build /opt/reconciler /opt/reconciler
# The chart runs as 65532 with a read-only root filesystem and an emptyDir on /tmp.
ENV PATH=/opt/reconciler/bin:$PATH HOME=/tmp PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 65532:65532
ENTRYPOINT ["reconciler"]
CMD ["--help"]

# inq: Incremental Network Quantization on Lightning, in a CUDA container (or on any Debian/Ubuntu base).
#   docker build -t inq .
#   docker run --gpus all --ipc=host -v "$PWD/data:/app/data" -v "$PWD/runs:/app/runs" \
#     inq train recipes/vgg16_8bit.yaml optimizer.lr=1e-4
# The CUDA libraries come with the pinned torch wheels; the host needs only the NVIDIA driver and
# the NVIDIA Container Toolkit. Runs land in /app/runs (mount it to keep them).
# Another base: BASE is the image, PYTHON_APT_VERSION the version of its python3 package, e.g.
#   docker build --build-arg BASE=debian:bookworm-slim --build-arg PYTHON_APT_VERSION=3.11.2 -t inq:debian .
# scripts/container_check.sh builds that with podman on a Debian base made here and runs the quickstart.
ARG BASE=nvidia/cuda:13.0.0-runtime-ubuntu24.04
FROM ${BASE}

ARG PYTHON_APT_VERSION=3.12.3
# Build-time only (not kept in the image): a pip.conf for the two installs below, e.g. one that
# points at local wheel folders mounted into the build (`podman build -v`, as the check does).
ARG PIP_CONFIG_FILE

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/inq \
    PATH=/opt/inq/bin:$PATH

RUN apt-get update \
    && apt-get install -y --no-install-recommends python3=${PYTHON_APT_VERSION}-* python3-venv=${PYTHON_APT_VERSION}-* \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/inq

WORKDIR /app

# Dependencies first (the tested pins), so code changes do not reinstall torch.
COPY requirements-lock.txt ./
RUN pip install --no-cache-dir -r requirements-lock.txt

COPY pyproject.toml README.md ./
COPY inq_cli ./inq_cli
COPY modules ./modules
COPY kernels ./kernels
# The shipped recipes: package data of the install (`inq train quickstart`) and /app/recipes/*.yaml.
COPY recipes ./recipes
RUN pip install --no-cache-dir --no-deps . \
    && rm -rf build ./*.egg-info

# A non-root user owns /app (runs, data, caches); the code and recipes stay read-only to it.
RUN groupadd --gid 10001 inq \
    && useradd --create-home --uid 10001 --gid 10001 --shell /bin/bash inq \
    && mkdir -p /app/runs /app/data \
    && chown 10001:10001 /app /app/runs /app/data
USER 10001:10001

ENTRYPOINT ["inq"]
CMD ["--help"]

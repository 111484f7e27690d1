# Apollo's image: daphne (web) and `manage.py rundeployments` (worker) from one image, as
# deploy/base runs them. Two stages: the build stage makes the virtual environment and the
# static files; the final stage gets only those and the source, runs as an unprivileged user
# and holds no compiler, no pip cache and no build-time key.
# Not built where it was written (no container engine there): tests/production/
# test_image_build.py runs the same steps (deploy/image/build.sh) in a clean virtual environment.
#   docker build -t registry.example.com/apollo:1.0.0 .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /app
# Dependencies first: this layer is reused until a pin changes.
COPY requirements.txt constraints.txt ./
COPY deploy/image/build.sh deploy/image/build.sh
RUN sh deploy/image/build.sh install /opt/venv
COPY . .
RUN sh deploy/image/build.sh collect /opt/venv /app/var

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 apollo \
    && useradd --system --uid 10001 --gid apollo --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin apollo
COPY --from=build /opt/venv /opt/venv
# Owned by root and read-only to Apollo; what it writes at run time goes to mounted volumes
# (/tmp, /app/var/ca in deploy/base).
COPY --from=build /app /app
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DEBUG=false \
    APOLLO_VAR_DIR=/app/var
USER 10001:10001
EXPOSE 8000
CMD ["daphne", "--bind", "0.0.0.0", "--port", "8000", "apollo_site.asgi:application"]

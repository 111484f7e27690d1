#!/bin/sh
# The build steps of Apollo's image (Dockerfile), in one place so that a test runs exactly
# these in a clean virtual environment where no container engine is available
# (tests/production/test_image_build.py).
#   deploy/image/build.sh install VENV        a fresh venv with the pinned runtime requirements
#                                             (made by $PYTHON, default python3)
#   deploy/image/build.sh collect VENV VARDIR  collectstatic (content-hashed names) + check
# Run from the source directory (the image's /app).
set -eu
step=$1
venv=$2
case "$step" in
install)
    "${PYTHON:-python3}" -m venv "$venv"
    "$venv/bin/pip" install --no-cache-dir --disable-pip-version-check -q \
        -c constraints.txt -r requirements.txt
    ;;
collect)
    # A throwaway key: collectstatic and check need settings, never the real secret. The
    # running container gets SECRET_KEY from the apollo-secrets Secret.
    export DEBUG=false SECRET_KEY=build-only-not-secret APOLLO_VAR_DIR="$3"
    "$venv/bin/python" manage.py collectstatic --noinput -v 0
    "$venv/bin/python" manage.py check --fail-level WARNING
    ;;
*)
    echo "usage: $0 install VENV | collect VENV VARDIR" >&2
    exit 2
    ;;
esac

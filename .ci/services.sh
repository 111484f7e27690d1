# Sourced by .ci/run: installs and starts the machine services the suite needs, from Debian's
# packages only. Each function is idempotent: on a machine that already has a service running it
# changes nothing.

ci_as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# The packages that provide each command the suite needs.
ci_install_packages() {
  local missing=()
  command -v pg_ctlcluster >/dev/null && [ -n "$(ls /usr/lib/postgresql 2>/dev/null)" ] ||
    missing+=(postgresql postgresql-contrib)
  command -v redis-server >/dev/null || missing+=(redis-server)
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing from Debian: ${missing[*]}"
    ci_as_root apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive ci_as_root apt-get install -y -q --no-install-recommends \
      "${missing[@]}" >/dev/null
  fi
}

# PostgreSQL on 127.0.0.1:5432, trusting local connections, with a database `test`, so that
# postgres://postgres@127.0.0.1:5432/test connects without a password.
ci_start_postgresql() {
  local version conf
  version="$(ls /usr/lib/postgresql | sort -V | tail -1)"
  if [ ! -d "/etc/postgresql/$version/main" ]; then
    ci_as_root pg_createcluster "$version" main --port 5432 >/dev/null
  fi
  conf="/etc/postgresql/$version/main"
  if ! grep -q '^# apollo-ci: trust' "$conf/pg_hba.conf"; then
    # SECURITY: trust is for this CI machine only; it listens on loopback alone.
    ci_as_root tee "$conf/pg_hba.conf" >/dev/null <<'EOF'
# apollo-ci: trust local connections (CI machine, loopback only)
local   all   all                 trust
host    all   all   127.0.0.1/32  trust
host    all   all   ::1/128       trust
EOF
    if pg_isready -q -h 127.0.0.1 -p 5432; then
      ci_as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload
    fi
  fi
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    ci_as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
  fi
  for _ in $(seq 1 60); do
    pg_isready -q -h 127.0.0.1 -p 5432 && break
    sleep 0.5
  done
  pg_isready -h 127.0.0.1 -p 5432
  if ! psql -h 127.0.0.1 -U postgres -tAc "select 1 from pg_database where datname='test'" |
    grep -q 1; then
    psql -h 127.0.0.1 -U postgres -qc 'create database test'
  fi
  psql "postgres://postgres@127.0.0.1:5432/test" -tAc 'select version()'
}

# Redis on 127.0.0.1:6379 without persistence.
ci_start_redis() {
  if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
      --logfile /tmp/apollo-ci-redis.log
  fi
  for _ in $(seq 1 60); do
    redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break
    sleep 0.5
  done
  redis-cli -h 127.0.0.1 -p 6379 ping
}

"""Attack: another account on the host reads Apollo's secrets from var/.

var/ holds the secret key (sessions, signed values, the key that encrypts cluster tokens),
the SQLite database (password hashes, token digests) and the demo cluster's kubeconfig (a
cluster-admin token). They are created 0600 in a 0700 directory, whatever the umask.
"""

import os
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _open_the_database(var_dir: Path, *, then: str = "") -> str:
    """Apollo's settings in a process of their own under umask 022, a table created, then the
    code `then` (`cursor` in hand, the connection still open); what it printed."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(APOLLO_VAR_DIR=str(var_dir), DEBUG="true")
    code = (
        "import os; os.umask(0o022); import django; "
        "os.environ['DJANGO_SETTINGS_MODULE'] = 'apollo_site.settings'; django.setup(); "
        "from django.db import connection; cursor = connection.cursor(); "
        "cursor.execute('CREATE TABLE probe (id integer)'); " + then
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=ROOT,
        check=True,
        timeout=60,
        capture_output=True,
        text=True,
    )
    return done.stdout


def test_var_the_secret_key_and_the_database_are_the_owners_only(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    _open_the_database(var_dir)
    assert _mode(var_dir) == 0o700
    assert _mode(var_dir / "secret_key") == 0o600
    assert _mode(var_dir / "apollo.sqlite3") == 0o600
    assert (var_dir / "apollo.sqlite3").stat().st_size > 0  # a real database, not a stub


def test_an_existing_world_readable_var_is_tightened(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    var_dir.mkdir(mode=0o755)
    var_dir.chmod(0o755)
    (var_dir / "apollo.sqlite3").touch(mode=0o644)
    (var_dir / "apollo.sqlite3").chmod(0o644)
    _open_the_database(var_dir)
    assert _mode(var_dir) == 0o700
    assert _mode(var_dir / "apollo.sqlite3") == 0o600


def test_the_databases_write_ahead_log_and_shared_memory_are_the_owners_only_too(
    tmp_path: Path,
) -> None:
    """SQLite runs in WAL mode (settings.SQLITE_OPTIONS): recent writes sit in apollo.sqlite3-wal,
    beside its index apollo.sqlite3-shm, until they are checkpointed into the file."""
    printed = _open_the_database(
        tmp_path / "var",
        then=(
            "import stat; print(cursor.execute('PRAGMA journal_mode').fetchone()[0]); "
            "var = os.environ['APOLLO_VAR_DIR']; "
            "print(*(oct(stat.S_IMODE(os.stat(os.path.join(var, f)).st_mode)) "
            "for f in ('apollo.sqlite3-wal', 'apollo.sqlite3-shm')))"
        ),
    )
    assert printed.split() == ["wal", "0o600", "0o600"]

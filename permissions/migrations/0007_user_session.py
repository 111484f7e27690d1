from typing import Any

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def keep_signed_in(apps: Any, schema_editor: Any) -> None:
    """Copy the sessions that have not expired from Django's table, with their user: nobody
    is signed out by the upgrade. A session whose data does not verify (another SECRET_KEY)
    is left behind, as Django would refuse it."""
    from django.contrib.auth import SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.utils import timezone

    Session = apps.get_model("sessions", "Session")
    UserSession = apps.get_model("permissions", "UserSession")
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    decoder = SessionStore()
    live = Session.objects.using(schema_editor.connection.alias).filter(
        expire_date__gt=timezone.now()
    )
    for old in live.iterator():
        data = decoder.decode(old.session_data)
        if not data:
            continue
        try:
            user_id = User._meta.pk.to_python(data.get(SESSION_KEY))
        except Exception:  # noqa: BLE001 - no user column for a value no user could have
            user_id = None
        UserSession.objects.using(schema_editor.connection.alias).create(
            session_key=old.session_key,
            session_data=old.session_data,
            expire_date=old.expire_date,
            user_id=user_id,
        )


class Migration(migrations.Migration):
    dependencies = [
        ("permissions", "0006_external_identities_name"),
        ("sessions", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="UserSession",
            fields=[
                (
                    "session_key",
                    models.CharField(
                        max_length=40, primary_key=True, serialize=False, verbose_name="session key"
                    ),
                ),
                ("session_data", models.TextField(verbose_name="session data")),
                ("expire_date", models.DateTimeField(db_index=True, verbose_name="expire date")),
                (
                    "user",
                    models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "verbose_name": "session",
                "verbose_name_plural": "sessions",
                "db_table": "permissions_user_session",
                "abstract": False,
            },
        ),
        migrations.RunPython(keep_signed_in, migrations.RunPython.noop),
    ]

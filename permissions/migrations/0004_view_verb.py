"""The `view` verb (issue #10): who may see deployments, manifests, variables and history.

No data migration: by rule 6 of permissions.rules every other verb's ALLOW implies view at its
scope, so every existing grant keeps its meaning (its holders still see what they may act on)
and nothing becomes visible that was not granted. Users who held no grant at all saw every
deployment before and see nothing now: that is the fix. Grant `view` to readers explicitly.
The `view` Permission row itself is created by Django's post_migrate handler, like the others.
"""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("permissions", "0003_blocker_group_name"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="grant",
            options={
                "ordering": ["-id"],
                "permissions": [
                    ("view", "view deployments, manifests, variables and history"),
                    ("deploy", "deploy"),
                    ("cancel", "cancel or revert a deployment"),
                    ("restart", "restart pods, rolling restart, scale"),
                    ("view_logs", "view logs"),
                    ("exec", "exec into a container"),
                    ("override_blockers", "deploy past a blocker with a reason"),
                    ("manage", "manage the service or environment"),
                ],
            },
        ),
    ]

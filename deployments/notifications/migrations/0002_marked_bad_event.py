"""The `marked_bad` event (a version marked bad, by a user or by Apollo), and subscriptions
that heard every event before it hear it too."""

from typing import Any

from django.db import migrations, models

# Every event before this migration: a subscription with all of them meant "everything".
EVERY_EVENT_BEFORE = {
    "requested",
    "started",
    "done",
    "failed",
    "canceled",
    "reverted",
    "blocked",
    "overridden",
}


def subscribe_everything_to_marked_bad(apps: Any, schema_editor: Any) -> None:
    Subscription = apps.get_model("notifications", "Subscription")
    for subscription in Subscription.objects.all():
        if (
            set(subscription.events) >= EVERY_EVENT_BEFORE
            and "marked_bad" not in subscription.events
        ):
            subscription.events = [*subscription.events, "marked_bad"]
            subscription.save(update_fields=["events"])


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="delivery",
            name="event",
            field=models.CharField(
                choices=[
                    ("requested", "Requested"),
                    ("started", "Started"),
                    ("done", "Done"),
                    ("failed", "Failed"),
                    ("canceled", "Canceled"),
                    ("reverted", "Reverted (a revert was requested)"),
                    ("blocked", "Blocked (refused by a blocker)"),
                    ("overridden", "Overridden (deployed past a blocker)"),
                    (
                        "marked_bad",
                        "Marked bad (a version refused in an environment until unmarked)",
                    ),
                ],
                max_length=20,
            ),
        ),
        migrations.RunPython(subscribe_everything_to_marked_bad, migrations.RunPython.noop),
    ]

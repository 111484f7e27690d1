"""Events say which service and environment they are about, so the History page can show each
to who may view it. Existing events are filled in from their target where it still exists (a
deployment, group or grant/blocker scope: its service and environment; a version: its service;
an environment: itself; restarts name their service in data). Events whose target is gone, and
events about clusters, tokens or users, stay without either: only superusers and `manage`
holders read those, which errs on the side of hiding."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

SCOPED = {  # target_type: the model holding service_id/environment_id
    "deployments.deployment": ("deployments", "Deployment"),
    "deployments.group": ("deployments", "Group"),
    "permissions.grant": ("permissions", "Grant"),
    "permissions.blocker": ("permissions", "Blocker"),
}


def fill_scope(apps, schema_editor):  # type: ignore[no-untyped-def]
    AuditEvent = apps.get_model("history", "AuditEvent")
    Service = apps.get_model("deployments", "Service")
    Environment = apps.get_model("environments", "Environment")
    Version = apps.get_model("deployments", "DeployableVersion")
    services = dict(Service.objects.values_list("name", "pk"))
    service_ids = set(services.values())
    environment_ids = set(Environment.objects.values_list("pk", flat=True))
    for event in AuditEvent.objects.exclude(target_id="").iterator():
        if not event.target_id.isdigit():
            continue
        target_id = int(event.target_id)
        service_id = environment_id = None
        if event.target_type in SCOPED:
            model = apps.get_model(*SCOPED[event.target_type])
            row = model.objects.filter(pk=target_id).values("service_id", "environment_id").first()
            if row is not None:
                service_id, environment_id = row["service_id"], row["environment_id"]
        elif event.target_type == "deployments.deployableversion":
            service_id = (
                Version.objects.filter(pk=target_id).values_list("service_id", flat=True).first()
            )
        elif event.target_type == "environments.environment":
            environment_id = target_id if target_id in environment_ids else None
            service_id = services.get(str((event.data or {}).get("service") or ""))
        elif event.target_type == "deployments.service":
            service_id = target_id if target_id in service_ids else None
        if service_id is not None or environment_id is not None:
            AuditEvent.objects.filter(pk=event.pk).update(
                service_id=service_id, environment_id=environment_id
            )


class Migration(migrations.Migration):
    dependencies = [
        ("deployments", "0005_manifest_policy"),
        ("permissions", "0004_view_verb"),
        ("environments", "0002_manifest_policy"),
        ("history", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="environment",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="environments.environment",
            ),
        ),
        migrations.AddField(
            model_name="auditevent",
            name="service",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="deployments.service",
            ),
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(fields=["action", "-created_at"], name="audit_action_idx"),
        ),
        migrations.RunPython(fill_scope, migrations.RunPython.noop),
    ]

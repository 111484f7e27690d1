"""Objects the engine's tests create in kubesim (or the real control plane) through the official
client, as another writer would: shared by the shared-watch tests."""

from typing import Any

from kubernetes import client


def create_deployment(api: Any, namespace: str, name: str) -> None:
    """A Deployment `name` of one nginx replica, its pods labelled app=`name`."""
    labels = {"app": name}
    client.AppsV1Api(api).create_namespaced_deployment(
        namespace,
        {
            "metadata": {"name": name},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
                },
            },
        },
    )

"""The Kubernetes adapter: the one package that speaks to Kubernetes, through the official client.

Views, services and the worker call these functions; none of them builds an API call
itself. Objects come back as plain dicts in the API's own camelCase shape, so that what
Apollo stores in timelines and snapshots is what `kubectl get -o json` would show.

One module per job: `client` (credentials and the pooled API client), `errors` (the API's
errors translated once), `apply` (server-side apply and pod actions), `read` (reads, lists
and watches), `pods` (logs, exec and proxy). Callers use the names below (`kube.apply`),
which is also what tests replace when they make the cluster misbehave.
"""

from environments.kube.apply import (
    APPLY_PATHS,
    IDENTITY_LABELS,
    RESTARTED_AT,
    ApplyPath,
    NotOwned,
    apply,
    delete_pod,
    forget,
    known_version,
    owned_version,
    remember,
    restart_deployment,
    scale_deployment,
)
from environments.kube.client import (
    FIELD_MANAGER,
    POOL_SIZE,
    TIMEOUT,
    Obj,
    api_client,
    client_credentials,
    connection_key,
)
from environments.kube.errors import ClusterUnreachable, KubeError, WatchExpired
from environments.kube.pods import (
    FOLLOW_READ_TIMEOUT,
    ExecSession,
    LogStream,
    ProxyResponse,
    pod_log_tail,
    proxy_pod,
)
from environments.kube.read import (
    WatchEvent,
    WatchStream,
    collection_version,
    list_objects,
    read_deployment,
    read_pod,
    read_replica_set,
)

__all__ = [
    "APPLY_PATHS",
    "FIELD_MANAGER",
    "FOLLOW_READ_TIMEOUT",
    "IDENTITY_LABELS",
    "POOL_SIZE",
    "RESTARTED_AT",
    "TIMEOUT",
    "ApplyPath",
    "ClusterUnreachable",
    "ExecSession",
    "KubeError",
    "LogStream",
    "NotOwned",
    "Obj",
    "ProxyResponse",
    "WatchEvent",
    "WatchExpired",
    "WatchStream",
    "api_client",
    "apply",
    "client_credentials",
    "collection_version",
    "connection_key",
    "delete_pod",
    "forget",
    "known_version",
    "list_objects",
    "owned_version",
    "pod_log_tail",
    "proxy_pod",
    "read_deployment",
    "read_pod",
    "read_replica_set",
    "remember",
    "restart_deployment",
    "scale_deployment",
]

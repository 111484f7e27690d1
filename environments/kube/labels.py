"""The labels Apollo stamps on every object it applies: which service, environment, group and
commit an object belongs to, and that Apollo manages it. Shared vocabulary at the bottom of the
layers (docs/architecture.md), so that the adapter, the environment's live state and the
deployments' rendering all read the same names; this module imports nothing."""

MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_SERVICE = "apollo.io/service"
LABEL_ENVIRONMENT = "apollo.io/environment"
LABEL_GROUP = "apollo.io/group"
LABEL_SHA = "apollo.io/commit-sha"

#!/bin/sh
# CI entry for the real control plane: builds it (idempotent; Go's module and build caches make a
# warm build take seconds) and runs the cluster-switched tests against it. Prints both durations.
#   cluster/ci.sh [extra pytest args]
set -eu
cd "$(dirname "$0")/.."

# The tests that deploy, roll out, judge health, cancel, revert, scale groups, read live
# status, tail logs and open shells; kubesim-only tests among them are marked and skipped.
# tests/cluster includes the parity test (test_parity.py), which runs kubesim beside the real server.
# tests/production: Apollo's own manifests (deploy/) applied there, and Apollo as their pod.
TESTS="
tests/cluster
tests/deployments/test_worker.py
tests/engine/test_owner_memory.py
tests/engine/test_shared_watch_objects.py
tests/deployments/test_deploy_service.py
tests/deployments/test_deployments_api.py
tests/deployments/test_apply_ownership.py
tests/deployments/test_rollout_timeline.py
tests/deployments/test_reliability.py
tests/deployments/test_rundeployments_command.py
tests/deployments/test_groups_kubesim.py
tests/deployments/test_groups_scale_subresource.py
tests/deployments/test_groups_service.py
tests/deployments/test_batch_socket.py
tests/environments/test_live_status.py
tests/environments/test_environment_page.py
tests/environments/test_livetail.py
tests/environments/test_livetail_features.py
tests/environments/test_shell.py
tests/environments/test_shell_session.py
tests/security/test_object_takeover.py
tests/production/test_incluster_credentials.py
tests/production/test_kubernetes_manifests.py
tests/production/test_apollo_in_cluster.py
"

start=$(date +%s)
cluster/build.sh
built=$(date +%s)
echo "cluster/ci.sh: control plane built in $((built - start)) s"

status=0
# shellcheck disable=SC2086  # TESTS is a list of paths
APOLLO_TEST_CLUSTER=kubernetes .venv/bin/pytest -p no:cacheprovider -q $TESTS "$@" || status=$?
done=$(date +%s)
echo "cluster/ci.sh: build $((built - start)) s, tests $((done - built)) s"
exit "$status"

"""The deployment engine: from a requested deployment to its verdict, read top to bottom.

1. Jenkins registers a version: ``deployments.services.versions.register_version`` (the
   webhook ``POST /api/v1/deployable-versions/`` and ``manage.py register_version``).
2. A user (page, API, command) requests a deployment:
   ``deployments.services.deploy.request_deployment`` asks the gate (permission, then the
   blockers), renders the manifests once (``deployments.manifests.render_checked``: templates,
   then the manifest policy), stores them on the deployment (``manifests.seal``: Secret values
   encrypted) and creates it PENDING; ``wakeup.notify_new_work`` wakes a worker after commit.
3. The worker (``worker.run_worker``, ``manage.py rundeployments``) claims it:
   ``worker.claim`` moves PENDING -> STARTED through ``Deployment.transition_to`` and takes a
   lease, renewed every second by the worker's ``heartbeat.Heartbeat`` thread (which also
   writes the worker's ``WorkerHeartbeat`` row and, on PostgreSQL, holds an advisory lock per
   deployment). A deployment whose lease expired, or whose lock the server freed when its
   worker died, is resumed by another worker. Every query of the worker waits out a database
   outage (``database.retrying``); the worker never exits for one.
4. Apply: ``worker.Run.deploy`` -> ``Run.documents`` (the stored documents, decrypted and
   checked against the policy again: ``manifests.recorded_checked``) -> ``Run.apply``
   (ownership checked for every object first, then server-side apply one document at a time).
5. Watch: ``rollout.Follower.follow`` watches the Deployment, its new pods and the Events; it
   records nothing itself but yields what it saw, and ``Run.record_progress`` writes it to the
   timeline and tells it when to stop (a cancellation, the worker shutting down).
6. Verdict: ``health.assess`` (a pure function of what the cluster reports) says DONE, FAILED
   or still progressing (after an outage or on resume: on the state the cluster reports then;
   the deadline counts only the time a worker watched); ``Run.finish_with_snapshot``
   records ``snapshots.take_snapshot`` and moves the deployment to its final status.
7. Cancel: ``deployments.services.deploy.cancel_deployment`` (PENDING_CANCELLATION);
   ``Run.roll_back`` re-applies the manifests recorded on the deployment that ran before
   (``Deployment.source_deployment``) and follows that rollout to CANCELED or FAILED.
"""

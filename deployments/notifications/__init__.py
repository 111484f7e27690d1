"""Notifications: Slack and signed webhooks about deployments, delivered from an outbox.

``events.enqueue`` writes one Delivery row per matching subscription in the transaction that
changes a deployment's status (the outbox); ``delivery.run_deliveries`` (a thread of
``rundeployments``) posts them in order per subscription, with retries and exponential
back-off, so a slow or absent receiver never delays a rollout. ``urlguard`` refuses webhook
URLs that point inside the network (SSRF) at save time and again at every delivery.
"""

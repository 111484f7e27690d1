"""Who may do what where (grants) and what refuses a deployment right now (blockers).

Public API, called by the deploy flow, the API, websocket consumers and commands alike:
  permissions.verbs.Verb, permissions.verbs.Effect
  permissions.services.can / explain / grant / save_grant / revoke_grant
  permissions.selectors.environments_for / services_for / allowed_targets / permission_matrix
  permissions.blockers.evaluate / can_override / save_blocker / delete_blocker
The permission rule is written down in permissions.rules.
"""

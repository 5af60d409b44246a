"""`reconcile serve`: a long-running controller that applies each source's branch on push and on a timer.

config (the serve file) → webhooks (verify, parse) → controller (one worker per source: coalesce, poll,
sync the commit, run the engine) → state (runs, deliveries) → app (HTTP: /webhook, /healthz, /metrics, /status).
"""

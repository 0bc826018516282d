"""The Kubernetes operator: BatchPredictionJobDefinition custom resources reconciled through the same
validate → pair → diff → plan → apply pipeline as ``reconciler apply``.

Layers, top to bottom: ``cli`` (flags → :class:`config.OperatorConfig`, starts kopf) > ``handlers``
(kopf glue: thin, parse → ``pipeline`` → ``status``/events) > ``pipeline`` (one object against the
API) and ``credentials`` (the API Secret) > ``status`` and ``crd`` (pure).
"""

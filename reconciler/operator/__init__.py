"""The Kubernetes operator: BatchPredictionJobDefinition custom resources reconciled through the same
validate → pair → diff → plan → apply pipeline as ``reconciler apply``.

Layers, top to bottom: ``cli`` (parses the flags) > ``start`` (flags → :class:`config.OperatorConfig`,
starts kopf) > ``handlers``
(kopf glue: thin, parse → ``act`` → ``status``/events) > ``act`` (performs a decision against the
API) > ``decide`` (pure: resource + live candidates → a decision) and ``credentials`` (the API Secret) > ``status`` and ``crd`` (pure).
"""

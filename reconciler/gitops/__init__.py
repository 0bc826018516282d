"""GitOps workflows around the engine: pull-request comments (:mod:`reconciler.gitops.github`) and
the ``ci``/``watch`` commands (:mod:`reconciler.gitops.cli`)."""

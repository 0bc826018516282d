"""GitOps workflows around the engine: pull-request comments (:mod:`reconciler.gitops.github`) and
what git says changed since a ref (:mod:`reconciler.gitops.changes`, for ``--changed-since``).
The ``ci`` and ``watch`` commands are :mod:`reconciler.cli.ci` and :mod:`reconciler.cli.watch`."""

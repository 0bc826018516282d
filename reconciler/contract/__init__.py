"""The contract layer: the JSON Schemas in ``schemas/`` and everything derived from them.

Every other part (manifests, the engine, the API client, the operator's CRD, the local service)
reads the contract from here and restates none of it: :mod:`~reconciler.contract.schemas` (the
files, bundled), :mod:`~reconciler.contract.validators` (jsonschema and jsonschema-rs over them),
:mod:`~reconciler.contract.defaults` (the API's defaults made explicit),
:mod:`~reconciler.contract.keys` (enums, read-only and write-only keys),
:mod:`~reconciler.contract.cron` (the schedule format), :mod:`~reconciler.contract.firings` (when
a schedule fires) and :mod:`~reconciler.contract.issues`
(what a violation means, in words). It imports nothing of reconciler but :mod:`reconciler.display`
and :mod:`reconciler.errors`.
"""

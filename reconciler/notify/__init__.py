"""Notifications: what happened (an apply finished or failed, drift found, a plan refused, a job of
the local service failed) told to webhooks and chat services. :mod:`.send` delivers (httpx,
apprise) and imports nothing of reconciler but ``extras``, so the local service uses it too;
:mod:`.events` builds the bodies from plans and apply results; :mod:`.config` turns
``notifications:`` of reconciler.yaml into channels (URLs and secrets from env or files)."""

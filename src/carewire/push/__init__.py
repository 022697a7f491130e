"""Carewire's own push app server (XEP-0357 §5): registrations, APNs and FCM, tracked attempts.

Layout: :mod:`.model` is the sans-IO core (registrations checked, payloads
built without PHI, provider answers classified, the attempt state machine,
back-off); :mod:`.jwt` signs the provider tokens; :mod:`.providers` speaks
HTTP/2 to APNs and FCM HTTP v1; :mod:`.appserver` ties them together with the
store: it registers devices, accepts the XMPP server's publishes, sends with
retries and records every attempt. The XMPP side (XEP-0357 enable/disable,
the ``push.DOMAIN`` service, when to publish) is :mod:`carewire.features.push`.
See docs/push.md.
"""

from __future__ import annotations

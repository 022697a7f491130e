"""Federation's administration: trusted domains, pinned peer certificates, stream status.

The hospital's side of server-to-server (docs/federation-admin.md): the policy
(an allow-list of partner domains, a "certificates only" switch), peer
certificates uploaded per remote domain, and what the streams report per
remote domain. :class:`~carewire.federation.trust.TrustedDomains` implements
:class:`carewire.core.federation.FederationSettings` and
:class:`~carewire.federation.status.StatusBoard` implements
:class:`carewire.core.federation.FederationStatusSink`; the console, the API
and the CLI change and read them. A service layer: no SQL, web or sockets.
"""

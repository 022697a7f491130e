"""SCIM 2.0 provisioning of the organisation directory (RFC 7643, RFC 7644; docs/scim.md).

An identity provider creates, changes, deactivates and deletes an organisation's
users and groups through ``/scim/v2`` with a bearer token of that organisation.
The protocol (request parsing, filters, PATCH, ETags, paging, discovery, error
bodies) is scim2-server's and scim2-models'; this package maps their resources
onto :class:`~carewire.directory.service.DirectoryService`:

- :mod:`.model` — tokens, links and the constants of the mapping;
- :mod:`.tokens` — the organisations' bearer tokens (SHA-256 digests only);
- :mod:`.mapping` — directory users and groups to SCIM resources and back (pure);
- :mod:`.query` — filters and sort orders to the storage's conditions (pure);
- :mod:`.backend` — scim2-server's storage interface on the directory;
- :mod:`.engine` — the discovery documents and scim2-server's handler, serving one
  request for one token;
- :mod:`.service` — :class:`~.service.ScimProvisioning`, what the rest of Carewire holds:
  the tokens, and the engine, imported and built on the first request.

It never imports storage, web, net or the features (an import-linter contract).
"""

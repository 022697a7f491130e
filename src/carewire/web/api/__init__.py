"""The REST API (``/api/v1``): the data platform and the organisation directory.

:func:`create_api` builds the application; the HTTPS app mounts it at
``/api/v1`` (so paths here are ``/datasets`` …). The OpenAPI document is at
``/api/v1/openapi.json`` and its browsable form at ``/api/v1/docs`` (its files
served from the package, see :mod:`.docs`); both are public, every resource
needs a token (see :mod:`.deps`). One module per resource; :data:`ROUTERS` is
the route list. Errors are problem details (RFC 9457, see :mod:`.problems`).
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from carewire import __version__
from carewire.web.api import (
    adapters,
    affiliations,
    assignments,
    certificates,
    communities,
    coverage,
    datasets,
    deliveries,
    devices,
    docs,
    federation,
    groups,
    invitations,
    ldap,
    organisations,
    presence,
    problems,
    push,
    records,
    rules,
    scim_tokens,
    users,
)
from carewire.web.api.deps import ApiServices
from carewire.web.guard import InputText, ResponseHeaders

__all__ = ["ROUTERS", "ApiServices", "create_api"]

#: Every resource's routes, in the order the OpenAPI document lists them.
ROUTERS: tuple[APIRouter, ...] = (
    datasets.router,
    records.router,
    rules.router,
    adapters.router,
    assignments.router,
    deliveries.router,
    push.router,
    presence.router,
    coverage.router,
    certificates.router,
    federation.router,
    organisations.router,
    communities.router,
    affiliations.router,
    users.router,
    devices.router,
    invitations.router,
    groups.router,
    ldap.router,
    scim_tokens.router,
)


def create_api(services: ApiServices) -> FastAPI:
    """The API application on ``services``, to be mounted at ``/api/v1``."""
    api = FastAPI(
        title="Carewire API",
        version=__version__,
        description="Datasets, records, rules, adapters and deliveries of the Carewire data "
        "platform, and its organisation directory (organisations, communities, affiliations, "
        "users, devices, invitations, groups, SCIM tokens), and federation's trusted domains. "
        "Errors are `application/problem+json` (RFC 9457); authenticate with "
        "`Authorization: Bearer <token>`.",
        openapi_url="/openapi.json",
        docs_url=None,  # served by .docs, with its files, not from a CDN
        redoc_url=None,
    )
    docs.install(api, openapi_url="/openapi.json")
    api.state.services = services
    # The HTTPS app adds them too; here they also hold where the API is served alone.
    api.add_middleware(InputText)
    api.add_middleware(ResponseHeaders)
    problems.install(api)
    for router in ROUTERS:
        api.include_router(router)
    return api

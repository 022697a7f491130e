"""``/scim/v2``: the SCIM 2.0 service provider's HTTP edge (RFC 7644 §3; docs/scim.md).

An explicit route list of the RFC's endpoints, each handed to
:class:`~carewire.identity.scim.service.ScimProvisioning` as a framework-free
request; bodies are read up to the service's cap plus one byte (a larger one
is its 413 with a SCIM error body, so the HTTPS app serves these paths outside
its generic body cap). Responses are ``application/scim+json``.
"""

from __future__ import annotations

import json
import logging

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from carewire.identity.scim.model import MAX_BODY_BYTES
from carewire.identity.scim.service import SCIM_PATH, ScimProvisioning

log = logging.getLogger(__name__)

_ALL = ["GET", "POST", "PUT", "PATCH", "DELETE"]

#: The endpoints of RFC 7644 §3.2 and §4; anything else is the service's 404.
PATHS: tuple[str, ...] = (
    "/ServiceProviderConfig",
    "/ResourceTypes",
    "/ResourceTypes/{name}",
    "/Schemas",
    "/Schemas/{name:path}",
    "/Users",
    "/Users/.search",
    "/Users/{id}",
    "/Groups",
    "/Groups/.search",
    "/Groups/{id}",
    "/.search",
    "/Bulk",
    "/Me",
    "/{other:path}",  # the service's SCIM 404
)


async def _body(request: Request) -> bytes:
    """The body, read up to one byte over the cap (the service answers 413 to more)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return b"\0" * (MAX_BODY_BYTES + 1)
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            break
    return body


def create_scim_app(provisioning: ScimProvisioning) -> Starlette:
    """The app to mount at :data:`~carewire.identity.scim.service.SCIM_PATH`."""

    async def serve(request: Request) -> Response:
        path = request.url.path.removeprefix(SCIM_PATH) or "/"
        scim_request = provisioning.request(
            request.method,
            path.removesuffix(".scim"),
            query=dict(request.query_params),
            headers=list(request.headers.items()),
            body=await _body(request),
        )
        remote_ip = request.client.host if request.client is not None else ""
        response = await provisioning.handle(scim_request, remote_ip=remote_ip)
        content = b"" if response.body is None else json.dumps(response.body).encode()
        headers = {k: v for k, v in response.headers.items() if k.lower() != "content-type"}
        media_type = response.headers.get("Content-Type", "application/scim+json")
        return Response(
            content, status_code=int(response.status), headers=headers, media_type=media_type
        )

    routes = [Route(path, serve, methods=_ALL) for path in PATHS]
    return Starlette(routes=routes)

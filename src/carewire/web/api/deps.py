"""What the API's handlers depend on: the services, and the caller's token (RFC 6750).

Every request carries ``Authorization: Bearer <token>``. A missing, unknown,
revoked or malformed token is a 401 with ``WWW-Authenticate: Bearer``; a
read-only token may only use the safe methods (GET, HEAD, OPTIONS), anything
else is a 403.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated, cast

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from carewire.adapters.manager import AdapterManager
from carewire.datasets.model import Origin
from carewire.datasets.registry import Registry
from carewire.datasets.service import DatasetService
from carewire.rules.engine import RuleEngine
from carewire.rules.service import RuleService
from carewire.security.tokens import AuthError, ForbiddenError, TokenInfo, TokenService

log = logging.getLogger(__name__)

#: Methods that change nothing (RFC 9110 §9.2.1), open to read-only tokens.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_bearer = HTTPBearer(
    auto_error=False,
    bearerFormat="cw_…",
    description="An API token from `carewire token create NAME`.",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiServices:
    """The services the API calls (never stores).

    Attributes:
        registry: Dataset definitions.
        datasets: Record reads and writes.
        tokens: API tokens.
        adapters: Adapter kinds and instances.
        rules: Rules (validated when saved).
        engine: The rules engine (for dry runs).
    """

    registry: Registry
    datasets: DatasetService
    tokens: TokenService
    adapters: AdapterManager
    rules: RuleService
    engine: RuleEngine


def get_services(request: Request) -> ApiServices:
    """The services of the app handling ``request`` (set by :func:`carewire.web.api.create_api`)."""
    return cast(ApiServices, request.app.state.services)


Services = Annotated[ApiServices, Depends(get_services)]


async def authorize(
    request: Request,
    services: Services,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> TokenInfo:
    """The caller's token, if it is valid and its role allows the request's method.

    Raises:
        AuthError: No bearer token, or not a valid one.
        ForbiddenError: A read-only token on a method that writes.
    """
    if credentials is None:
        raise AuthError("this API needs an 'Authorization: Bearer <token>' header")
    try:
        token = await services.tokens.verify(credentials.credentials)
    except AuthError as exc:
        log.info("API request refused: %s", exc.message)
        raise
    if request.method not in SAFE_METHODS and not token.role.can_write:
        raise ForbiddenError(f"the token {token.name!r} is {token.role.value} and cannot write")
    return token


CurrentToken = Annotated[TokenInfo, Depends(authorize)]


def origin_of(token: TokenInfo) -> Origin:
    """Who a write through the API is recorded as."""
    return Origin(actor=f"api:{token.name}")

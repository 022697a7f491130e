"""The handheld client's PIN over XMPP: ``urn:carewire:pin:0`` (verify and change), see docs/pin.md.

A client asks the server (``to`` the server or the user's own bare JID, or
no ``to``) with an IQ set:

- ``<verify xmlns='urn:carewire:pin:0' pin='2580'/>``: the result echoes
  ``<verify must-change='true|false'/>``; ``true`` for a temporary PIN, which
  the client must change now;
- ``<change xmlns='urn:carewire:pin:0' old='2580' new='7391'/>``: an empty
  result once the new PIN (the organisation's policy) is set.

The PIN belongs to the organisation directory (:mod:`carewire.directory.pins`):
a wrong PIN counts toward the account lockout together with wrong passwords
(5 failures: a three-minute delay; 10: locked). When a wrong PIN locks the
account, the user's sessions end right after the error reply. Errors:
``not-authorized`` (wrong PIN), ``policy-violation`` (type wait: inside the
delay), ``not-allowed`` (locked or login disabled), ``not-acceptable`` (the
new PIN breaks the policy, with the reason), ``item-not-found`` (no
directory user or no PIN), ``bad-request`` (attributes missing).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final
from xml.etree.ElementTree import Element

from carewire.core.auth import LOCKED_TEXT, Admission
from carewire.core.events import IqRequest
from carewire.core.feature import FeatureContext, IqTarget, PinGate
from carewire.directory.model import (
    AccountRefusedError,
    PinPolicyError,
    UnknownUserError,
    WrongPinError,
)
from carewire.directory.service import DirectoryService
from carewire.xmpp.errors import StanzaCondition, StanzaError
from carewire.xmpp.xml import make

log = logging.getLogger(__name__)

NS_PIN: Final = "urn:carewire:pin:0"
VERIFY: Final = f"{{{NS_PIN}}}verify"
CHANGE: Final = f"{{{NS_PIN}}}change"
WRONG_PIN: Final = "The PIN is not correct."
#: Longest value accepted in an attribute (a PIN has 4 or 6 digits).
MAX_PIN: Final = 16


def _attribute(payload: Element, name: str) -> str:
    value = payload.get(name)
    if value is None or not value or len(value) > MAX_PIN:
        raise StanzaError(StanzaCondition.BAD_REQUEST, f"'{name}' is required")
    return value


class PinService:
    """Answers the PIN IQs with the directory's PIN facet."""

    def __init__(self, ctx: FeatureContext, directory: DirectoryService) -> None:
        self.ctx = ctx
        self.pins = directory.pins

    async def verify(self, req: IqRequest) -> Element | None:
        """IQ set ``<verify pin='…'/>``."""
        login = req.sender_login
        pin = _attribute(req.payload, "pin")
        try:
            check = await self.pins.verify(login, pin, remote_ip=_remote_ip(req))
        except (WrongPinError, AccountRefusedError, UnknownUserError) as exc:
            raise await self._refusal(login, exc) from None
        return make(VERIFY, {"must-change": "true" if check.must_change else "false"})

    async def change(self, req: IqRequest) -> Element | None:
        """IQ set ``<change old='…' new='…'/>``."""
        login = req.sender_login
        old, new = _attribute(req.payload, "old"), _attribute(req.payload, "new")
        try:
            await self.pins.change_own(login, old, new, remote_ip=_remote_ip(req))
        except PinPolicyError as exc:
            raise StanzaError(StanzaCondition.NOT_ACCEPTABLE, exc.message) from None
        except (WrongPinError, AccountRefusedError, UnknownUserError) as exc:
            raise await self._refusal(login, exc) from None
        log.info("PIN changed by %s", login)
        return None

    async def _refusal(self, login: str, exc: Exception) -> StanzaError:
        """The stanza error for a refused PIN; a lock it caused ends the user's sessions."""
        if isinstance(exc, UnknownUserError):
            return StanzaError(StanzaCondition.ITEM_NOT_FOUND, "no PIN is set for this account")
        if isinstance(exc, AccountRefusedError):
            if exc.reason == Admission.DELAYED.value:
                return StanzaError(StanzaCondition.POLICY_VIOLATION, exc.message, error_type="wait")
            return StanzaError(StanzaCondition.NOT_ALLOWED, exc.message)
        account = await self.ctx.stores.accounts.get(login)
        if account is not None and account.is_locked:
            log.info("account %s locked after repeated wrong PINs: ending its sessions", login)
            # After the error reply, which the router sends when this handler returns.
            asyncio.get_running_loop().call_soon(self._end_sessions, login)
        return StanzaError(StanzaCondition.NOT_AUTHORIZED, WRONG_PIN)

    def _end_sessions(self, login: str) -> None:
        self.ctx.accounts.end_sessions(login, text=LOCKED_TEXT)


class DirectoryPinGate:
    """:class:`~carewire.core.feature.PinGate` on the directory: the PIN unlocks FAST tokens."""

    def __init__(self, directory: DirectoryService) -> None:
        self.pins = directory.pins

    async def is_required(self, login: str) -> bool:
        """Every directory user with a PIN must give it with a FAST token."""
        return await self.pins.has_pin(login)

    async def matches(self, login: str, pin: str, *, remote_ip: str = "") -> bool:
        """Whether ``pin`` is right (argon2id, off the event loop); a wrong one is audited."""
        return await self.pins.matches(login, pin[:MAX_PIN], remote_ip=remote_ip)


def _remote_ip(req: IqRequest) -> str:
    return req.origin.remote_ip if req.origin is not None else ""


def setup(ctx: FeatureContext) -> None:
    """Register the PIN IQs (to the server or the user's own account) and advertise them."""
    directory = ctx.require(DirectoryService)
    service = PinService(ctx, directory)
    ctx.provide(DirectoryPinGate(directory), as_type=PinGate)  # type: ignore[type-abstract]
    targets = (IqTarget.HOST, IqTarget.ACCOUNT)
    ctx.iq.register(VERIFY, service.verify, types=("set",), targets=targets)
    ctx.iq.register(CHANGE, service.change, types=("set",), targets=targets)
    ctx.disco.add_server_feature(NS_PIN)

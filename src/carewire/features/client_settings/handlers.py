"""IQ handlers for ``<settings/>``, ``<roster/>`` and ``<patient/>`` (``urn:carewire:settings:0``).

Each handler asks :class:`~.service.ClientSettingsService` for the data,
translates domain errors into stanza errors and renders the answer with the
builders of :mod:`.xml`.
"""

from __future__ import annotations

import logging
from xml.etree.ElementTree import Element

from carewire.core.events import IqRequest
from carewire.core.feature import FeatureContext
from carewire.errors import NotFoundError
from carewire.features.client_settings.model import MAX_MRN, UnknownPatientError
from carewire.features.client_settings.service import ClientSettingsService
from carewire.features.client_settings.xml import (
    patient_element,
    roster_element,
    settings_element,
)
from carewire.xmpp.errors import StanzaCondition, StanzaError

log = logging.getLogger(__name__)


class ClientSettingsFeature:
    """The IQ handlers."""

    def __init__(self, ctx: FeatureContext, service: ClientSettingsService) -> None:
        self.ctx = ctx
        self.service = service

    async def settings(self, req: IqRequest) -> Element | None:
        """``<settings/>``: the current client settings and presence states."""
        states = await self.service.presence_states(req.sender_login)
        return settings_element(
            self.service.settings(), states, offline_default=self.ctx.config.offline_ttl
        )

    async def roster(self, req: IqRequest) -> Element | None:
        """``<roster/>``: the clinical roster."""
        try:
            units = await self.service.roster()
        except NotFoundError as exc:
            log.warning("roster unavailable: %s", exc)
            raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE) from None
        return roster_element(units)

    async def patient(self, req: IqRequest) -> Element | None:
        """``<patient mrn='…'/>``: a patient's details and location."""
        mrn = (req.payload.get("mrn") or "").strip()
        if not mrn or len(mrn) > MAX_MRN:
            raise StanzaError(
                StanzaCondition.BAD_REQUEST, f"an mrn of 1 to {MAX_MRN} characters is required"
            )
        try:
            record = await self.service.patient(mrn)
        except UnknownPatientError:
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "no such patient") from None
        details = await self.service.details_of(record)
        return patient_element(mrn, details, await self.service.location_of(record))

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
from carewire.datasets.model import Record
from carewire.directory.model import SYSTEM_CALLER, OrganisationSettings
from carewire.directory.service import DirectoryService
from carewire.errors import NotFoundError, ValidationError
from carewire.features.client_settings.model import (
    BREAK_GLASS,
    MAX_MRN,
    NS_PATIENT,
    UnknownPatientError,
)
from carewire.features.client_settings.service import ClientSettingsService
from carewire.features.client_settings.xml import (
    organisation_element,
    patient_element,
    roster_element,
    settings_element,
)
from carewire.security.audit import Channel
from carewire.security.phi_access import AccessDeniedError, PatientAccess
from carewire.xmpp.errors import StanzaCondition, StanzaError

log = logging.getLogger(__name__)


class ClientSettingsFeature:
    """The IQ handlers."""

    def __init__(
        self, ctx: FeatureContext, service: ClientSettingsService, access: PatientAccess
    ) -> None:
        self.ctx = ctx
        self.service = service
        self.access = access

    async def settings(self, req: IqRequest) -> Element | None:
        """``<settings/>``: the current client settings, presence states and organisation's."""
        states = await self.service.presence_states(req.sender_login)
        el = settings_element(
            self.service.settings(), states, offline_default=self.ctx.config.offline_ttl
        )
        el.append(organisation_element(await self._organisation(req.sender_login)))
        return el

    async def _organisation(self, login: str) -> OrganisationSettings | None:
        """The settings of ``login``'s directory organisation (None: no profile, no directory)."""
        directory = self.ctx.find(DirectoryService)
        if directory is None:
            return None
        org_id = directory.index.organisation_of(login)
        if org_id is None:
            return None
        try:
            return (await directory.organisations.get(SYSTEM_CALLER, org_id)).settings
        except NotFoundError:
            return None

    async def roster(self, req: IqRequest) -> Element | None:
        """``<roster/>``: the clinical roster."""
        try:
            units = await self.service.roster()
        except NotFoundError as exc:
            log.warning("roster unavailable: %s", exc)
            raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE) from None
        return roster_element(units)

    async def patient(self, req: IqRequest) -> Element | None:
        """``<patient mrn='…'/>``: a patient's details and location, for the care team.

        Anyone off the patient's care team gets ``forbidden`` unless they
        broke the glass for this patient (:meth:`break_glass`); each answer
        and each refusal is in the audit trail.
        """
        mrn, record = await self._patient(req)
        try:
            await self.access.check_patient(
                req.sender_login, record, channel=Channel.XMPP, remote_ip=_remote_ip(req)
            )
        except AccessDeniedError as exc:
            raise StanzaError(StanzaCondition.FORBIDDEN, exc.message) from None
        details = await self.service.details_of(record)
        return patient_element(mrn, details, await self.service.location_of(record))

    async def break_glass(self, req: IqRequest) -> Element | None:
        """``<break-glass mrn='…'><reason>…</reason></break-glass>``: a bounded, audited grant."""
        _, record = await self._patient(req)
        reason = req.payload.findtext(f"{{{NS_PATIENT}}}reason") or ""
        try:
            grant = await self.access.break_glass(
                req.sender_login, record, reason, channel=Channel.XMPP, remote_ip=_remote_ip(req)
            )
        except ValidationError as exc:
            raise StanzaError(StanzaCondition.BAD_REQUEST, exc.message) from None
        return Element(
            BREAK_GLASS,
            {
                "mrn": req.payload.get("mrn", ""),
                "grant": str(grant.id),
                "expires": grant.expires_at.isoformat(),
            },
        )

    async def _patient(self, req: IqRequest) -> tuple[str, Record]:
        mrn = (req.payload.get("mrn") or "").strip()
        if not mrn or len(mrn) > MAX_MRN:
            raise StanzaError(
                StanzaCondition.BAD_REQUEST, f"an mrn of 1 to {MAX_MRN} characters is required"
            )
        try:
            return mrn, await self.service.patient(mrn)
        except UnknownPatientError:
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "no such patient") from None


def _remote_ip(req: IqRequest) -> str:
    return "" if req.origin is None else req.origin.remote_ip

"""Client settings, clinical roster, patient details (``urn:carewire:settings|roster|patient:0``).

Three IQ gets answered by the server (``to`` the domain, or no ``to``):

* ``<settings xmlns='urn:carewire:settings:0'/>``: every client-facing
  setting of the enabled XMPP adapter (help link, session and offline
  timeouts, acknowledgements, roster options, phone number and patient
  location transformations, patient details, custom parameters) and the
  facility's presence states.
* ``<roster xmlns='urn:carewire:roster:0'/>``: units, their locations and,
  per functional role, the users with an active assignment there.
* ``<patient xmlns='urn:carewire:patient:0' mrn='…'/>``: a patient's default
  and configured details and location, for the patient's care team only
  (others get ``forbidden``); ``<break-glass mrn='…'><reason>…</reason></break-glass>``
  (a set) grants a clinician off the team a bounded, audited read (docs/phi.md).

Theory of operation: the adapter's settings are edited in the console and the
API and reach this feature through the XMPP adapter's door
(:class:`~carewire.adapters.xmpp.gateway.ChatSettingsSource`); they are read
again for every request, so an answer always follows the current settings.
Dataset reads go through the :class:`~carewire.datasets.service.DatasetService`
(paged queries, batched ``get_many``/``follow``) and
:class:`~carewire.datasets.paths.PathResolver`.
The feature needs the data platform (a kernel without it refuses to load
it). The alert builder uses the same data through the
:class:`ClientSettingsService` this feature provides. See docs/client-settings.md.

Layout: :mod:`.model` (namespaces, limits, errors, values), :mod:`.service`
(the data-facing :class:`ClientSettingsService`), :mod:`.xml` (the answer
builders) and :mod:`.handlers` (the IQ handlers); this module registers them.
"""

from __future__ import annotations

from carewire.adapters.xmpp.gateway import ChatSettingsSource
from carewire.core.feature import FeatureContext, IqTarget
from carewire.datasets.paths import PathResolver
from carewire.datasets.service import DatasetService
from carewire.features.client_settings.handlers import ClientSettingsFeature
from carewire.features.client_settings.model import (
    BREAK_GLASS,
    DEFAULT_DETAILS,
    MAX_MRN,
    NS_PATIENT,
    NS_ROSTER,
    NS_SETTINGS,
    PATIENT,
    ROSTER,
    SETTINGS,
    PatientLocation,
    PresenceState,
    RosterLocation,
    RosterRole,
    RosterUnit,
    RosterUser,
    UnknownPatientError,
    format_value,
)
from carewire.features.client_settings.service import MAX_RECORDS, ClientSettingsService
from carewire.features.client_settings.xml import (
    patient_element,
    roster_element,
    settings_element,
)
from carewire.security.phi_access import PatientAccess

__all__ = [
    "DEFAULT_DETAILS",
    "MAX_MRN",
    "MAX_RECORDS",
    "NS_PATIENT",
    "NS_ROSTER",
    "NS_SETTINGS",
    "PATIENT",
    "ROSTER",
    "SETTINGS",
    "ClientSettingsFeature",
    "ClientSettingsService",
    "PatientLocation",
    "PresenceState",
    "RosterLocation",
    "RosterRole",
    "RosterUnit",
    "RosterUser",
    "UnknownPatientError",
    "format_value",
    "patient_element",
    "roster_element",
    "settings_element",
    "setup",
]


def setup(ctx: FeatureContext) -> None:
    """Register the three IQs and provide :class:`ClientSettingsService`."""
    service = ctx.provide(
        ClientSettingsService(
            ctx.require(ChatSettingsSource),
            ctx.require(DatasetService),
            resolver=ctx.require(PathResolver),
            domain=ctx.hosts.domain,
        )
    )
    feature = ClientSettingsFeature(ctx, service, ctx.require(PatientAccess))
    targets = (IqTarget.HOST, IqTarget.ACCOUNT)
    ctx.iq.register(SETTINGS, feature.settings, types=("get",), targets=targets)
    ctx.iq.register(ROSTER, feature.roster, types=("get",), targets=targets)
    ctx.iq.register(PATIENT, feature.patient, types=("get",), targets=targets)
    ctx.iq.register(BREAK_GLASS, feature.break_glass, types=("set",), targets=targets)
    for var in (NS_SETTINGS, NS_ROSTER, NS_PATIENT):
        ctx.disco.add_server_feature(var)

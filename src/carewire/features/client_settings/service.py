"""The data-facing client settings service (``urn:carewire:settings|roster|patient:0``).

:class:`ClientSettingsService` reads the enabled XMPP adapter's settings
(:class:`~carewire.adapters.xmpp.gateway.ChatSettingsSource`) at every call and
applies them to the clinical datasets (patients, their details and location,
the roster of units and assignments, the facility's presence states) through
the :class:`~carewire.datasets.service.DatasetService` and
:class:`~carewire.datasets.paths.PathResolver`. It knows nothing of XML.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence

from carewire.adapters.xmpp.gateway import ChatSettings, ChatSettingsSource
from carewire.datasets.model import Record, RecordId
from carewire.datasets.paths import PathError, PathResolver, parse_path
from carewire.datasets.query import MAX_LIMIT, Filter, FilterOp, Query, Sort
from carewire.datasets.service import DatasetService
from carewire.errors import NotFoundError
from carewire.features.client_settings.model import (
    DEFAULT_DETAILS,
    PatientLocation,
    PresenceState,
    RosterLocation,
    RosterRole,
    RosterUnit,
    RosterUser,
    UnknownPatientError,
    format_value,
    setting_rows,
)
from carewire.xmpp.jid import JID, InvalidJID

log = logging.getLogger(__name__)

#: Most records of one dataset read for a roster or the presence states.
MAX_RECORDS = 20_000
#: Ids per batched read.
_CHUNK = 500
_ACTIVE = ["active", "Active", "ACTIVE"]


class ClientSettingsService:
    """The XMPP adapter's client settings applied to the clinical data.

    Provided to other features (the alert builder) with ``ctx.provide``.
    """

    def __init__(
        self,
        source: ChatSettingsSource,
        datasets: DatasetService,
        *,
        resolver: PathResolver | None = None,
        domain: str,
    ) -> None:
        self.source = source
        self.datasets = datasets
        self.resolver = resolver or PathResolver(datasets.registry, datasets.store)
        self.domain = domain
        self._reported: set[tuple[str, str]] = set()  # bad detail paths already logged

    # --- settings ----------------------------------------------------------------

    def settings(self) -> ChatSettings:
        """The enabled XMPP adapter's settings, read now."""
        return self.source.current()

    def dataset(self, role: str) -> str:
        """The dataset the enabled XMPP adapter uses for ``role`` (``PATIENTS``)."""
        return self.source.dataset(role)

    def transform_phone(self, number: str) -> str:
        """``number`` after the Phone Number Transformations."""
        return self.settings().transform_phone(number)

    def transform_location(self, location: str) -> str:
        """``location`` after the Patient Location Transformations."""
        return self.settings().transform_location(location)

    # --- patients ----------------------------------------------------------------

    async def patient(self, mrn: str) -> Record:
        """The PATIENTS record with this MRN.

        Raises:
            UnknownPatientError: No such patient (or no patients dataset).
        """
        name = self.dataset("PATIENTS")
        if name not in self.datasets.registry:
            raise UnknownPatientError("no patients dataset")
        query = Query(filters=(Filter(field="mrn", op=FilterOp.EQ, value=mrn),), limit=1)
        page = await self.datasets.query(name, query)
        if not page.records:
            raise UnknownPatientError("no patient has this MRN")
        return page.records[0]

    async def patient_details(self, mrn: str) -> list[tuple[str, str, bool]]:
        """(label, value, hidden) of a patient: default attributes, then the configured ones.

        Raises:
            UnknownPatientError: No such patient.
        """
        return [
            (label, value, hidden)
            for label, _, value, hidden in await self.details_of(await self.patient(mrn))
        ]

    async def details_of(self, record: Record) -> list[tuple[str, str, str, bool]]:
        """(label, path, value, hidden) of a PATIENTS record, in display order.

        A configured detail whose path does not fit the dataset is left out
        (and logged, without any patient data).
        """
        wanted: list[tuple[str, str, bool]] = [(lb, p, False) for lb, p in DEFAULT_DETAILS]
        for row in setting_rows(self.settings().get("patient_details")):
            wanted.append(
                (
                    str(row.get("label", "")),
                    str(row.get("attribute_path", "")),
                    row.get("hidden") is True,
                )
            )
        paths = {}
        for label, text, _ in wanted:
            if text in paths:
                continue
            try:
                paths[text] = parse_path(self.datasets.registry, record.dataset, text)
            except PathError as exc:
                if (label, text) not in self._reported:  # once, not at every request
                    self._reported.add((label, text))
                    log.warning("patient detail %r left out: %s", label, exc)
        values = await self.resolver.resolve_all(record, paths.values())
        return [
            (label, text, format_value(values[text]), hidden)
            for label, text, hidden in wanted
            if text in paths
        ]

    async def patient_location(self, mrn: str) -> PatientLocation | None:
        """Where the patient with this MRN is (None without a bed).

        Raises:
            UnknownPatientError: No such patient.
        """
        return await self.location_of(await self.patient(mrn))

    async def location_for(self, record: Record) -> str:
        """The location text of a PATIENTS, BEDS or ROOMS record, transformed ("" if unknown)."""
        found = await self.location_of(record)
        return "" if found is None else found.text

    async def location_of(self, record: Record) -> PatientLocation | None:
        """Facility, unit, room and bed of a PATIENTS, BEDS or ROOMS record, and its text.

        A patient's bed is the record its first to-one link to the beds dataset
        reaches (the built-in PATIENTS has none; an interface adds one, such as
        ``bed``). Returns None when nothing is known.
        """
        beds, rooms = self.dataset("BEDS"), self.dataset("ROOMS")
        if record.dataset == self.dataset("PATIENTS"):
            link = _bed_link(self.datasets, record.dataset, beds)
            if link is None:
                return None
            prefix = f"{link}."
        elif record.dataset == beds:
            prefix = ""
        elif record.dataset == rooms:
            return await self._location(
                record, {"room": "room_number", "unit": "unit.name", "facility": "facility.name"}
            )
        else:
            return None
        return await self._location(
            record,
            {
                "bed": f"{prefix}bed_number",
                "room": f"{prefix}room.room_number",
                "unit": f"{prefix}room.unit.name",
                "facility": f"{prefix}room.facility.name",
            },
        )

    async def _location(self, record: Record, wanted: Mapping[str, str]) -> PatientLocation | None:
        paths = {}
        for part, text in wanted.items():
            try:
                paths[part] = parse_path(self.datasets.registry, record.dataset, text)
            except PathError:
                continue  # a customised dataset without this link: that part stays unknown
        values = await self.resolver.resolve_all(record, paths.values())
        parts = {part: format_value(values[p.text]) for part, p in paths.items()}
        if not any(parts.values()):
            return None
        unit = self.unit_name(parts.get("facility", ""), parts.get("unit", ""))
        place = "-".join(p for p in (parts.get("room", ""), parts.get("bed", "")) if p)
        text = " ".join(p for p in (unit, place) if p)
        return PatientLocation(
            facility=parts.get("facility", ""),
            unit=parts.get("unit", ""),
            room=parts.get("room", ""),
            bed=parts.get("bed", ""),
            text=self.transform_location(text),
        )

    def unit_name(self, facility: str, unit: str, settings: ChatSettings | None = None) -> str:
        """A unit's displayed name: ``FACILITY UNIT`` with Multiple Facility on."""
        settings = settings or self.settings()
        if unit and facility and settings.get("multiple_facility") is True:
            return f"{facility} {unit}"
        return unit

    # --- roster --------------------------------------------------------------------

    async def roster(self) -> list[RosterUnit]:
        """Every unit with its locations and the users actively assigned there, per role."""
        settings = self.settings()
        names = {r: self.dataset(r) for r in _ROSTER_DATASETS}
        missing = [n for n in names.values() if n not in self.datasets.registry]
        if missing:
            raise NotFoundError(f"the roster needs the dataset(s) {', '.join(missing)}")
        units = await self._all(names["UNITS"])
        facilities = await self._names(names["FACILITIES"], [u.get("facility") for u in units])
        units_ds = self.datasets.registry.get(names["UNITS"])
        link = units_ds.link("locations")
        unit_locations: dict[RecordId, list[RecordId]] = {}
        if link is not None:
            unit_locations = await self.datasets.store.follow(units_ds, link, [u.id for u in units])
        location_ids = sorted({i for ids in unit_locations.values() for i in ids})
        locations = await self._get_many(names["LOCATIONS"], location_ids)
        assignments = await self._all(
            names["ASSIGNMENTS"], (Filter(field="state", op=FilterOp.IN, value=_ACTIVE),)
        )
        roles = await self._get_many(names["FUNCTIONAL_ROLES"], _ids(assignments, "role"))
        users = await self._get_many(names["USERS"], _ids(assignments, "usr"))
        by_location: dict[RecordId, list[Record]] = {}
        for a in assignments:
            loc = a.get("location")
            if isinstance(loc, int):
                by_location.setdefault(RecordId(loc), []).append(a)
        out = []
        for unit in units:
            facility = facilities.get(unit.get("facility"), "")
            unit_name = format_value(unit.get("name"))
            rows = []
            for loc_id in unit_locations.get(unit.id, []):
                loc = locations.get(loc_id)
                if loc is None:
                    continue
                roster_roles = _roles(
                    by_location.get(loc_id, []), roles, users, settings, self.domain
                )
                rows.append(
                    RosterLocation(
                        location_id=format_value(loc.get("location_id")), roles=roster_roles
                    )
                )
            rows.sort(key=lambda r: r.location_id.casefold())
            out.append(
                RosterUnit(
                    name=self.unit_name(facility, unit_name, settings),
                    unit=unit_name,
                    facility=facility,
                    locations=tuple(rows),
                )
            )
        out.sort(key=lambda u: (u.name.casefold(), u.facility.casefold()))
        return out

    # --- presence states ---------------------------------------------------------------

    async def presence_states(self, login: str) -> list[PresenceState]:
        """The presence states of the user's facility (every facility's when it is unknown)."""
        states_ds, facilities_ds = self.dataset("PRESENCE_STATES"), self.dataset("FACILITIES")
        if states_ds not in self.datasets.registry or facilities_ds not in self.datasets.registry:
            return []
        records = await self._all(states_ds)
        facilities = await self._names(facilities_ds, [r.get("facility") for r in records])
        own = await self._facility_of(login)
        out = []
        for r in records:
            facility_id = r.get("facility")
            if own is not None and facility_id != own:
                continue
            duration = r.get("duration")
            out.append(
                PresenceState(
                    facility=facilities.get(facility_id, ""),
                    show=format_value(r.get("show")),
                    status=format_value(r.get("status")),
                    duration=duration if isinstance(duration, int) else None,
                )
            )
        return out

    async def _facility_of(self, login: str) -> object:
        users = self.dataset("USERS")
        if users not in self.datasets.registry:
            return None
        query = Query(filters=(Filter(field="login", op=FilterOp.EQ, value=login),), limit=1)
        page = await self.datasets.query(users, query)
        if not page.records:
            return None
        try:
            path = parse_path(self.datasets.registry, users, "unit.facility")
        except PathError:
            return None
        return await self.resolver.resolve(page.records[0], path)

    # --- reads ---------------------------------------------------------------------------

    async def _all(self, dataset: str, filters: tuple[Filter, ...] = ()) -> list[Record]:
        """Matching records in id order, at most :data:`MAX_RECORDS`."""
        out: list[Record] = []
        while len(out) < MAX_RECORDS:
            query = Query(
                filters=filters, sort=(Sort(field="id"),), offset=len(out), limit=MAX_LIMIT
            )
            page = await self.datasets.query(dataset, query)
            out.extend(page.records)
            if not page.records or len(out) >= page.total:
                return out
        log.warning("%s: only the first %d records are used", dataset, MAX_RECORDS)
        return out

    async def _get_many(self, dataset: str, ids: Sequence[RecordId]) -> dict[RecordId, Record]:
        ds = self.datasets.registry.get(dataset)
        out: dict[RecordId, Record] = {}
        for start in range(0, len(ids), _CHUNK):
            out.update(await self.datasets.store.get_many(ds, ids[start : start + _CHUNK]))
        return out

    async def _names(self, dataset: str, refs: Iterable[object]) -> dict[object, str]:
        ids = sorted({RecordId(r) for r in refs if isinstance(r, int)})
        records = await self._get_many(dataset, ids)
        return {rid: format_value(rec.get("name")) for rid, rec in records.items()}


_ROSTER_DATASETS = ("UNITS", "FACILITIES", "LOCATIONS", "ASSIGNMENTS", "FUNCTIONAL_ROLES", "USERS")


def _ids(records: Iterable[Record], link: str) -> list[RecordId]:
    return sorted({RecordId(v) for r in records if isinstance(v := r.get(link), int)})


def _bed_link(datasets: DatasetService, patients: str, beds: str) -> str | None:
    """The to-one link from PATIENTS to the beds dataset (``bed`` preferred)."""
    links = [
        link
        for link in datasets.registry.get(patients).links
        if link.target == beds and not link.is_to_many
    ]
    links.sort(key=lambda link: link.name != "bed")
    return links[0].name if links else None


def _roles(
    assignments: Sequence[Record],
    roles: Mapping[RecordId, Record],
    users: Mapping[RecordId, Record],
    settings: ChatSettings,
    domain: str,
) -> tuple[RosterRole, ...]:
    """Group one location's active assignments by role (and level, when both levels exist)."""
    levels: dict[RecordId, set[str]] = {}
    for a in assignments:
        role = a.get("role")
        if isinstance(role, int):
            levels.setdefault(RecordId(role), set()).add(format_value(a.get("level")))
    prefixes = {
        "1": str(settings.get("level1_prefix") or ""),
        "2": str(settings.get("level2_prefix") or ""),
    }
    groups: dict[tuple[str, str], list[RosterUser]] = {}
    for a in assignments:
        role_id, user_id = a.get("role"), a.get("usr")
        role = roles.get(RecordId(role_id)) if isinstance(role_id, int) else None
        user = users.get(RecordId(user_id)) if isinstance(user_id, int) else None
        if role is None or user is None:
            continue
        jid = _jid(format_value(user.get("login")), domain)
        if jid is None:
            continue
        role_name = format_value(role.get("name"))
        level = format_value(a.get("level"))
        # "…a prefix to the role name for assignments with a level value of "1"
        # when an assignment for the same location and role exists with level "2"" (and back).
        is_both = {"1", "2"} <= levels[RecordId(role.id)]
        prefix = prefixes.get(level, "") if is_both else ""
        shown = f"{prefix} {role_name}" if prefix else role_name
        groups.setdefault((role_name, shown), []).append(
            RosterUser(jid=jid, name=_user_name(user), level=level)
        )
    out = []
    for (role_name, shown), members in groups.items():
        unique = {(u.jid, u.level): u for u in members}  # the same assignment twice
        ordered = sorted(unique.values(), key=lambda u: (u.level, u.name.casefold(), u.jid))
        out.append(RosterRole(name=shown, role=role_name, users=tuple(ordered)))
    out.sort(key=lambda r: (r.role.casefold(), min(u.level for u in r.users), r.name))
    return tuple(out)


def _jid(login: str, domain: str) -> str | None:
    if not login:
        return None
    try:
        return str(JID.parse(f"{login}@{domain}").bare)
    except InvalidJID:
        return None


def _user_name(user: Record) -> str:
    reference = format_value(user.get("reference_name"))
    if reference:
        return reference
    full = " ".join(
        p for p in (format_value(user.get("first_name")), format_value(user.get("last_name"))) if p
    )
    return full or format_value(user.get("login"))

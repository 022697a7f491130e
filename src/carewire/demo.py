"""A demo hospital in one step: an organisation, its units as groups, and their staff.

The hospital is an organisation of the directory; each unit (ICU, Emergency,
Med-Surg 4) is a group, and its staff are directory users in that group, so
everyone has their unit's colleagues as contacts (the directory's roster
items, made by the server at their first login) and the XMPP group address
``<unit>@groups.DOMAIN`` reaches the whole unit. The charge nurse administers
the organisation in the web console. The same hospital's datasets (units,
rooms, beds, assignments) are loaded by :mod:`carewire.demo_data`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING

from carewire.directory.model import (
    AdminInvitee,
    Caller,
    CallerRole,
    Group,
    NewHospital,
    NewUser,
    Organisation,
    Profile,
    StaffType,
)
from carewire.directory.policy import pin_problem

if TYPE_CHECKING:
    from carewire.assembly import Assembly
    from carewire.directory.service import DirectoryService


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoStaff:
    """One member of the demo hospital's staff."""

    login: str
    first_name: str
    last_name: str
    role: str
    unit: str


UNITS: dict[str, tuple[tuple[str, str, str, str], ...]] = {
    "ICU": (
        ("nurse.adams", "Grace", "Adams", "RN"),
        ("nurse.baker", "Omar", "Baker", "RN"),
        ("dr.chen", "Wei", "Chen", "MD"),
        ("dr.diaz", "Lucia", "Diaz", "MD"),
    ),
    "Emergency": (
        ("nurse.evans", "Mia", "Evans", "RN"),
        ("nurse.foster", "Sam", "Foster", "RN"),
        ("dr.garcia", "Ana", "Garcia", "MD"),
        ("dr.hughes", "Tom", "Hughes", "MD"),
    ),
    "Med-Surg 4": (
        ("nurse.ito", "Ken", "Ito", "RN"),
        ("nurse.jones", "Ruth", "Jones", "RN"),
        ("dr.khan", "Sara", "Khan", "MD"),
        ("charge.lee", "Min", "Lee", "Charge RN"),
    ),
}


def staff() -> list[DemoStaff]:
    """The demo staff, unit by unit."""
    return [
        DemoStaff(login=login, first_name=first, last_name=last, role=role, unit=unit)
        for unit, members in UNITS.items()
        for login, first, last, role in members
    ]


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoResult:
    """What loading the demo did.

    Attributes:
        organisation: The hospital's name.
        created: Logins of the staff created now.
        existing: Logins that existed already (kept as they are).
        password: The staff's password (new staff only).
        pin: The staff's PIN (new staff only).
        roster_items: Directory contacts the staff have (each unit's colleagues).
        administrator: The organisation administrator's console user name.
    """

    organisation: str
    created: list[str]
    existing: list[str]
    password: str
    pin: str
    roster_items: int
    administrator: str


HOSPITAL = "Carewire General"
OFFICE_NUMBER = "(555) 010-0100"
ADMINISTRATOR = "charge.lee"
_CALLER = Caller(actor="cli:demo", role=CallerRole.SYSTEM_ADMIN)


def demo_pin() -> str:
    """A random 4-digit PIN the default policy accepts."""
    while True:
        pin = f"{secrets.randbelow(10_000):04d}"
        if pin_problem(pin, 4) is None:
            return pin


async def _hospital(directory: DirectoryService, domain: str) -> Organisation:
    for org in await directory.organisations.list_visible(_CALLER):
        if org.name == HOSPITAL:
            return org
    return await directory.organisations.create_hospital(
        _CALLER,
        NewHospital(
            name=HOSPITAL,
            office_number=OFFICE_NUMBER,
            admin=AdminInvitee(email=f"it.admin@{domain}", first_name="Pat", last_name="Morgan"),
        ),
    )


async def _unit_groups(directory: DirectoryService, org: Organisation) -> dict[str, Group]:
    have = {g.name: g for g in await directory.groups.list_for(_CALLER, org.id)}
    for unit in UNITS:
        if unit not in have:
            have[unit] = await directory.groups.create(
                _CALLER, org.id, unit, whole_group_messaging=True
            )
    return have


def _new_user(person: DemoStaff, group: Group, *, domain: str, password: str, pin: str) -> NewUser:
    is_physician = person.role == "MD"
    return NewUser(
        profile=Profile(
            title="Dr" if is_physician else "",
            first_name=person.first_name,
            last_name=person.last_name,
            credentials=person.role,
            job_title=f"{person.role}, {person.unit}",
            email=f"{person.login}@{domain}",
            staff_type=StaffType.PHYSICIAN if is_physician else StaffType.NON_PHYSICIAN,
        ),
        login=person.login,
        pin=pin,
        password=password,
        is_org_admin=person.login == ADMINISTRATOR,
        groups=(group.id,),
        send_invitation=False,
    )


async def load_demo(services: Assembly, *, domain: str) -> DemoResult:
    """Create the hospital, its unit groups and staff (existing logins are kept as they are)."""
    directory = services.directory
    org = await _hospital(directory, domain)
    groups = await _unit_groups(directory, org)
    password, pin = secrets.token_urlsafe(9), demo_pin()
    created, existing = [], []
    for person in staff():
        if await services.stores.accounts.exists(person.login):
            existing.append(person.login)
            continue
        new = _new_user(person, groups[person.unit], domain=domain, password=password, pin=pin)
        await directory.users.create(_CALLER, org.id, new)
        created.append(person.login)
    items = sum(len(members) * (len(members) - 1) for members in UNITS.values())
    return DemoResult(
        organisation=org.name,
        created=created,
        existing=existing,
        password=password,
        pin=pin,
        roster_items=items,
        administrator=f"{ADMINISTRATOR}@{domain}",
    )

"""A demo hospital in one step: staff accounts of three units with ready-made rosters.

Everyone in a unit has everyone else of the unit in their roster (group = the
unit's name, subscription both), so a newcomer can log two clients in and
chat, see presence and try offline delivery at once. The same hospital's
datasets (units, rooms, beds, assignments) are loaded by :mod:`carewire.demo_data`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from carewire.core.accounts import AccountInput, AccountService
from carewire.core.stores import RosterItem, Stores, Subscription


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
    """What loading the demo did."""

    created: list[str]
    existing: list[str]
    password: str
    roster_items: int


async def load_demo(stores: Stores, accounts: AccountService, *, domain: str) -> DemoResult:
    """Create the demo staff (existing logins are kept as they are) and their rosters."""
    password = secrets.token_urlsafe(9)
    people = staff()
    created, existing = [], []
    for person in people:
        if await stores.accounts.exists(person.login):
            existing.append(person.login)
            continue
        await accounts.create(
            AccountInput(
                login=person.login,
                password=password,
                first_name=person.first_name,
                last_name=person.last_name,
            )
        )
        created.append(person.login)
    items = 0
    for person in people:
        for other in people:
            if other.unit != person.unit or other.login == person.login:
                continue
            contact = f"{other.login}@{domain}"
            if await stores.roster.get_item(person.login, contact) is not None:
                continue
            await stores.roster.set_item(
                person.login,
                RosterItem(
                    contact=contact,
                    name=f"{other.first_name} {other.last_name}, {other.role}",
                    subscription=Subscription.BOTH,
                    groups=(person.unit,),
                ),
            )
            items += 1
    return DemoResult(created=created, existing=existing, password=password, roster_items=items)

"""The organisation directory in feature tests: the whole assembly, and helpers to fill it.

Organisations, groups and users are made through the directory service with a
system administrator's caller, exactly as the console and the API would; the
XMPP side sees them through the directory's index and change events.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from xml.etree.ElementTree import Element

import pytest

from carewire.directory.model import (
    SYSTEM_CALLER,
    AdminInvitee,
    DirectoryUser,
    Group,
    NewHospital,
    NewPractice,
    NewUser,
    Organisation,
    Profile,
)
from carewire.directory.service import DirectoryService
from carewire.features.clinical_presence import ClinicalPresence
from carewire.features.directory_roster import DirectoryRoster
from carewire.features.tracking import MessageTracker
from carewire.xmpp import ns
from tests.features.harness import Harness, RecordingSink, make_harness
from tests.storage.conftest import db_url

__all__ = ["PASSWORD", "Directory", "db_url", "directory_fixture", "error_text", "iq_answer"]

PASSWORD = "correct horse battery"
IQ = f"{{{ns.CLIENT}}}iq"


class Directory:
    """A harness with the directory, and what the tests build in it."""

    def __init__(self, h: Harness) -> None:
        assert h.platform is not None
        self.h = h
        self.svc: DirectoryService = h.platform.directory

    @property
    def domain(self) -> str:
        return self.h.domain

    def jid(self, login: str) -> str:
        return f"{login}@{self.domain}"

    async def hospital(self, name: str) -> Organisation:
        slug = re.sub("[^a-z]", "", name.lower())
        return await self.svc.organisations.create_hospital(
            SYSTEM_CALLER,
            NewHospital(
                name=name,
                office_number="(408) 882-5830",
                admin=AdminInvitee(email=f"admin@{slug}.org", first_name="Ada", last_name="Admin"),
            ),
        )

    async def practice(self, hospital: Organisation, name: str) -> Organisation:
        slug = re.sub("[^a-z]", "", name.lower())
        made = await self.svc.organisations.create_practice(
            SYSTEM_CALLER,
            NewPractice(
                hospital_id=hospital.id,
                name=name,
                office_number="555-669-2750",
                admin=AdminInvitee(email=f"admin@{slug}.org", first_name="Pat", last_name="Admin"),
            ),
        )
        return made.practice

    async def group(self, org: Organisation, name: str, *, everyone: bool = False) -> Group:
        return await self.svc.groups.create(
            SYSTEM_CALLER, org.id, name, whole_group_messaging=everyone
        )

    async def user(
        self,
        org: Organisation,
        login: str,
        first: str,
        last: str,
        *,
        groups: Sequence[Group] = (),
        pin: str = "2580",
        temporary: bool = False,
    ) -> DirectoryUser:
        """A registered user (with a password and a PIN) of ``org``."""
        return await self.svc.users.create(
            SYSTEM_CALLER,
            org.id,
            NewUser(
                profile=Profile(first_name=first, last_name=last, email=f"{login}@{org.id}.org"),
                login=login,
                pin=pin,
                pin_is_temporary=temporary,
                password=PASSWORD,
                groups=tuple(g.id for g in groups),
                send_invitation=False,
            ),
        )

    async def add(self, group: Group, *logins: str) -> None:
        await self.svc.groups.add_members(SYSTEM_CALLER, group.id, list(logins))

    async def remove(self, group: Group, *logins: str) -> None:
        await self.svc.groups.remove_members(SYSTEM_CALLER, group.id, list(logins))

    async def settle(self) -> None:
        """Everything queued is done: roster syncs, message records, device records."""
        ctx = self.h.kernel.ctx
        await ctx.require(DirectoryRoster).drain()
        await ctx.require(MessageTracker).flush()
        await ctx.require(ClinicalPresence).drain()

    async def reply(self, login: str, xml: str) -> Element:
        """A fresh session of ``login`` sends one stanza; the single answer."""
        return await self.h.ask(login, xml)


def error_text(stanza: Element) -> str:
    """The <text/> of a stanza error."""
    return stanza.findtext(f"{{{ns.CLIENT}}}error/{{{ns.STANZAS_ERR}}}text") or ""


def iq_answer(sink: RecordingSink, iq_id: str) -> Element:
    """The one answer to IQ ``iq_id`` among what a session received."""
    (found,) = [s for s in sink.take() if s.tag == IQ and s.get("id") == iq_id]
    return found


@pytest.fixture(name="d")
async def directory_fixture(tmp_path: Path, db_url: str) -> AsyncIterator[Directory]:
    """Every feature on the whole assembly, on SQLite and (when configured) PostgreSQL."""
    h = await make_harness(tmp_path, with_platform=True, url=db_url)
    try:
        yield Directory(h)
    finally:
        await h.close()

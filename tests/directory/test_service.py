"""The service as the assembly builds it: wiring, the features' access, mail, closing."""

from __future__ import annotations

from pathlib import Path

from carewire.assembly import Assembly, Options, assemble
from carewire.clock import FakeClock
from carewire.directory.model import AdminInvitee, NewHospital
from carewire.directory.service import DirectoryService
from carewire.mail import MemoryMailer
from carewire.security.console_auth import normalize_username
from tests.directory.world import SYSADMIN


async def test_the_assembly_builds_and_provides_the_directory(tmp_path: Path) -> None:
    mailer = MemoryMailer()
    platform: Assembly = await assemble(
        Options(
            url=f"sqlite+aiosqlite:///{tmp_path / 'a.db'}",
            domain="hospital.example",
            clock=FakeClock(),
            mailer=mailer,
        )
    )
    try:
        directory = platform.directory
        assert isinstance(directory, DirectoryService)
        assert directory.config.domain == "hospital.example"
        platform.load_features(())
        assert platform.kernel.ctx.require(DirectoryService) is directory
        org = await directory.organisations.create_hospital(
            SYSADMIN,
            NewHospital(
                name="Abelard",
                office_number="408-882-5830",
                admin=AdminInvitee(email="chief@abelard.org", first_name="C", last_name="D"),
            ),
        )
        (mail,) = mailer.to("chief@abelard.org")
        assert "https://hospital.example/register/" in mail.body
        assert directory.index.organisation_name(org.id) == "Abelard"
    finally:
        await platform.close()


def test_console_usernames_may_be_email_addresses() -> None:
    assert normalize_username(" Chief@Abelard.ORG ") == "chief@abelard.org"
    assert normalize_username("admin") == "admin"

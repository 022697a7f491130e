"""The certificate manager: details, download, delete, CSRs, uploads and their refusals, renewal."""

from __future__ import annotations

import json
import sqlite3
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from carewire.assembly import Options, assemble
from carewire.clock import FakeClock
from carewire.rules.settings import SettingsError
from carewire.security.audit import AuditEvent, Channel, Outcome
from carewire.security.cert_manager import (
    SYSTEM,
    Caller,
    CertificateError,
    CertificateManager,
    CheckOutcome,
)
from carewire.security.certificates import CertStatus, create_self_signed, name_matches
from tests.security.pki import DOMAIN, NOW, Issued, Pki, issue, p12, rsa_key

FEDERATED = (DOMAIN, f"chat.{DOMAIN}", f"patients.{DOMAIN}")
CSR_FIELDS = {
    "country": "us",
    "city": "Fort Wayne",
    "state": "Indiana",
    "organization": "General Hospital",
    "unit": "Engineering",
}


async def make_csr(manager: CertificateManager, by: Caller = SYSTEM, **changes: str) -> str:
    """Create a CSR from CSR_FIELDS with ``changes``."""
    f = CSR_FIELDS | changes
    return await manager.create_csr(
        country=f["country"],
        city=f["city"],
        state=f["state"],
        organization=f["organization"],
        unit=f["unit"],
        by=by,
    )


class Recorder:
    """An audit trail that keeps events in memory."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    async def record(self, event: AuditEvent) -> object:
        self.events.append(event)
        return None

    def actions(self) -> list[tuple[str, Outcome]]:
        return [(e.action, e.outcome) for e in self.events]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def audit() -> Recorder:
    return Recorder()


@pytest.fixture
def manager(tmp_path: Path, clock: FakeClock, audit: Recorder) -> CertificateManager:
    m = CertificateManager(tmp_path, DOMAIN, clock, audit)
    create_self_signed(DOMAIN, m.cert_file, m.key_file, now=NOW)
    return m


@pytest.fixture
def pki() -> Pki:
    return Pki()


ADMIN = Caller(actor="api:admin", channel=Channel.API, remote_ip="192.0.2.7")


# -- details, download, delete ------------------------------------------------------------


def test_details_of_the_self_signed_certificate(manager: CertificateManager) -> None:
    d = manager.details()
    assert d.domain == DOMAIN and d.status is CertStatus.GOOD
    assert d.subject == d.issuer == f"CN={DOMAIN}" and d.is_self_signed
    assert d.names == FEDERATED
    assert d.not_before < NOW < d.not_after
    assert len(d.fingerprint) == 32 * 3 - 1 and d.fingerprint.count(":") == 31
    assert d.fingerprint == d.fingerprint.upper()


@pytest.mark.parametrize(
    ("before_expiry", "status"),
    [
        (timedelta(days=31), CertStatus.GOOD),
        (timedelta(days=30), CertStatus.EXPIRES_SOON),
        (timedelta(seconds=1), CertStatus.EXPIRES_SOON),
        (timedelta(0), CertStatus.EXPIRED),
        (-timedelta(days=3), CertStatus.EXPIRED),
    ],
)
def test_status_thresholds(
    manager: CertificateManager, clock: FakeClock, before_expiry: timedelta, status: CertStatus
) -> None:
    not_after = manager.details().not_after
    clock.advance((not_after - before_expiry - clock.now()).total_seconds())
    assert manager.details().status is status


def test_download_is_the_pem_chain(manager: CertificateManager, pki: Pki) -> None:
    assert manager.download().startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE KEY" not in manager.download()


async def test_delete_generates_a_new_self_signed(
    manager: CertificateManager, audit: Recorder
) -> None:
    calls: list[int] = []
    manager.add_listener(lambda: calls.append(1))
    old = manager.details()
    new = await manager.delete(by=ADMIN)
    assert new.is_self_signed and new.fingerprint != old.fingerprint
    assert manager.details() == new and calls == [1]
    assert audit.actions() == [
        ("certificate.delete", Outcome.SUCCESS),
        ("certificate.generate", Outcome.SUCCESS),
    ]
    deleted = audit.events[0]
    assert deleted.actor == "api:admin" and deleted.channel is Channel.API
    assert deleted.target == DOMAIN and deleted.remote_ip == "192.0.2.7"
    assert deleted.details["fingerprint"] == old.fingerprint


# -- CSR ------------------------------------------------------------------------------------


async def test_csr_requires_every_field(manager: CertificateManager) -> None:
    assert manager.csr_details() is None
    with pytest.raises(SettingsError) as err:
        await manager.create_csr(country="", city=" ", state="", organization="", unit="")
    assert str(err.value) == "\n".join(
        [
            "The information provided is either invalid or incomplete.",
            "- Required: Country",
            "- Required: City",
            "- Required: State",
            "- Required: Organization",
            "- Required: Organizational Unit",
        ]
    )
    with pytest.raises(SettingsError, match="two-letter country code") as err:
        await make_csr(manager, country="USA", unit="")
    assert err.value.problems[0] == "Required: Organizational Unit"
    assert manager.csr_details() is None


async def test_csr_for_the_domain_and_subdomains(
    manager: CertificateManager, audit: Recorder
) -> None:
    pem = await make_csr(manager, ADMIN)
    csr = x509.load_pem_x509_csr(pem.encode())
    assert csr.is_signature_valid
    attrs = {a.oid: a.value for a in csr.subject}
    assert attrs[NameOID.COMMON_NAME] == DOMAIN and attrs[NameOID.COUNTRY_NAME] == "US"
    assert attrs[NameOID.LOCALITY_NAME] == "Fort Wayne"
    assert attrs[NameOID.ORGANIZATIONAL_UNIT_NAME] == "Engineering"
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert tuple(san.get_values_for_type(x509.DNSName)) == FEDERATED
    details = manager.csr_details()
    assert details is not None and details.pem == pem and details.created_at == NOW
    assert (details.domain, details.country, details.city) == (DOMAIN, "US", "Fort Wayne")
    assert (details.state, details.organization) == ("Indiana", "General Hospital")
    key = manager.data_dir / "certs/csr/key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert audit.actions() == [("certificate.csr", Outcome.SUCCESS)]
    # A new CSR overwrites the one in progress, with a new key.
    again = await make_csr(manager, city="Elkhart")
    assert again != pem
    details = manager.csr_details()
    assert details is not None and details.city == "Elkhart"


# -- upload ---------------------------------------------------------------------------------


async def test_upload_with_key(manager: CertificateManager, pki: Pki, audit: Recorder) -> None:
    calls: list[int] = []
    manager.add_listener(lambda: calls.append(1))
    leaf = pki.leaf()
    d = await manager.upload(pki.chain_pem(leaf), by=ADMIN)
    assert not d.is_self_signed and d.issuer == "CN=Test Intermediate CA"
    assert d.status is CertStatus.GOOD and calls == [1]
    assert manager.download() == leaf.cert_pem() + pki.intermediate.cert_pem()
    assert manager.key_file.read_text() == leaf.key_pem()
    assert stat.S_IMODE(manager.key_file.stat().st_mode) == 0o600
    assert audit.actions() == [("certificate.upload", Outcome.SUCCESS)]
    assert audit.events[0].details["from_csr"] is False


async def test_upload_rsa_with_a_traditional_key(manager: CertificateManager, pki: Pki) -> None:
    leaf = pki.leaf(key=rsa_key())
    text = leaf.cert_pem() + pki.intermediate.cert_pem()
    text += leaf.key_pem(serialization.PrivateFormat.TraditionalOpenSSL)
    assert "BEGIN RSA PRIVATE KEY" in text
    await manager.upload(text)
    assert manager.details().fingerprint != ""
    loaded = serialization.load_pem_private_key(manager.key_file.read_bytes(), None)
    assert loaded.public_key() == leaf.key.public_key()


async def test_upload_for_the_csr_in_progress(
    manager: CertificateManager, pki: Pki, audit: Recorder
) -> None:
    await make_csr(manager)
    csr_key = serialization.load_pem_private_key(
        (manager.data_dir / "certs/csr/key.pem").read_bytes(), None
    )
    leaf = pki.leaf(FEDERATED, key=csr_key)  # type: ignore[arg-type]
    d = await manager.upload(pki.chain_pem(leaf, with_key=False), is_federating=True)
    assert not d.is_self_signed
    assert manager.csr_details() is None
    assert not (manager.data_dir / "certs/csr").exists()
    assert manager.key_file.read_bytes() == (
        csr_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    assert audit.events[-1].details["from_csr"] is True


def _refusal_cases(pki: Pki) -> dict[str, tuple[str, str, bool]]:
    """Case name → (PEM text, message, federating)."""
    leaf = pki.leaf()
    other = issue("other", names=[DOMAIN])
    expired = pki.leaf(not_after=NOW - timedelta(days=1))
    future = pki.leaf(not_before=NOW + timedelta(days=1))
    wrong = pki.leaf(["other.example"], subject="other.example")
    wildcard = pki.leaf([f"*.{DOMAIN}"])
    inter = pki.intermediate.cert_pem()
    encrypted = leaf.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    ).decode()
    return {
        "not-pem": ("hello, this is not a certificate", "the file is not PEM", False),
        "no-cert": (leaf.key_pem(), "the file holds no certificate", False),
        "key-first": (
            leaf.key_pem() + leaf.cert_pem() + inter,
            "the certificate must come first; the private key, if included, goes last",
            False,
        ),
        "key-in-the-middle": (
            leaf.cert_pem() + leaf.key_pem() + inter,
            "the certificate must come first",
            False,
        ),
        "out-of-order": (
            inter + leaf.cert_pem() + leaf.key_pem(),
            "the certificates are out of order: certificate 2 (CN=h.example) did not issue "
            "certificate 1 (CN=Test Intermediate CA)",
            False,
        ),
        "unrelated": (
            leaf.cert_pem() + pki.root.cert_pem() + leaf.key_pem(),
            "certificate 2 (CN=Test Root CA) did not issue certificate 1",
            False,
        ),
        "mismatched-key": (
            leaf.cert_pem() + inter + other.key_pem(),
            "the private key does not match the certificate",
            False,
        ),
        "no-key-no-csr": (
            leaf.cert_pem() + inter,
            "the file holds no private key and no CSR is in progress",
            False,
        ),
        "expired": (
            pki.chain_pem(expired),
            f"certificate 1 (CN=h.example) expired on {NOW - timedelta(days=1):%Y-%m-%d}",
            False,
        ),
        "not-yet-valid": (pki.chain_pem(future), "is not valid before", False),
        "wrong-domain": (
            pki.chain_pem(wrong),
            "the certificate does not cover h.example (it names other.example)",
            False,
        ),
        "not-federating-names": (
            pki.chain_pem(leaf),
            "does not cover chat.h.example, patients.h.example (it names h.example)",
            True,
        ),
        "wildcard-not-the-domain": (
            pki.chain_pem(wildcard),
            "does not cover h.example (it names *.h.example)",
            False,
        ),
        "encrypted-key": (leaf.cert_pem() + encrypted, "the private key is encrypted", False),
        "two-keys": (
            pki.chain_pem(leaf) + leaf.key_pem(),
            "more than one private key",
            False,
        ),
        "csr-instead": (
            "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
            "the file holds a 'CERTIFICATE REQUEST' block",
            False,
        ),
        "bad-cert": (
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "certificate 1 is not a valid X.509 certificate",
            False,
        ),
        "bad-key": (
            leaf.cert_pem() + "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "the private key cannot be read",
            False,
        ),
    }


CASES = list(_refusal_cases(Pki()))


@pytest.mark.parametrize("case", CASES)
async def test_upload_refusals(
    manager: CertificateManager, pki: Pki, audit: Recorder, case: str
) -> None:
    text, message, federating = _refusal_cases(pki)[case]
    before = (manager.cert_file.read_bytes(), manager.key_file.read_bytes())
    with pytest.raises(CertificateError) as err:
        await manager.upload(text, is_federating=federating, by=ADMIN)
    assert message in err.value.message
    assert err.value.code == "invalid-certificate"
    assert (manager.cert_file.read_bytes(), manager.key_file.read_bytes()) == before
    assert audit.actions() == [("certificate.upload", Outcome.FAILURE)]
    assert audit.events[0].details == {"reason": err.value.message}


async def test_upload_not_for_the_csr_in_progress(manager: CertificateManager, pki: Pki) -> None:
    await make_csr(manager)
    with pytest.raises(CertificateError, match="not issued for the CSR in progress"):
        await manager.upload(pki.chain_pem(pki.leaf(), with_key=False))
    assert manager.csr_details() is not None  # still in progress


async def test_federating_with_a_wildcard(manager: CertificateManager, pki: Pki) -> None:
    d = await manager.upload(pki.chain_pem(pki.leaf([DOMAIN, f"*.{DOMAIN}"])), is_federating=True)
    assert d.names == (DOMAIN, f"*.{DOMAIN}")


@pytest.mark.parametrize(
    ("name", "pattern", "matches"),
    [
        ("h.example", "h.example", True),
        ("H.Example.", "h.example", True),
        ("chat.h.example", "*.h.example", True),
        ("h.example", "*.h.example", False),
        ("a.chat.h.example", "*.h.example", False),
        ("chat.example", "*.example", False),  # a wildcard needs two labels after it
        ("chat.h.example", "c*.h.example", False),
        ("chat.h.example", "*.*.example", False),
    ],
)
def test_name_matches(name: str, pattern: str, matches: bool) -> None:
    assert name_matches(name, pattern) is matches


# -- check and renewal ----------------------------------------------------------------------


async def test_check_creates_a_missing_certificate(
    tmp_path: Path, clock: FakeClock, audit: Recorder
) -> None:
    m = CertificateManager(tmp_path, DOMAIN, clock, audit)
    result = await m.check()
    assert result.outcome is CheckOutcome.CREATED and result.details.is_self_signed
    assert audit.actions() == [("certificate.generate", Outcome.SUCCESS)]
    assert audit.events[0].actor == "system" and audit.events[0].channel is Channel.SYSTEM


async def test_check_good(manager: CertificateManager, audit: Recorder) -> None:
    result = await manager.check()
    assert result.outcome is CheckOutcome.GOOD and result.days_left >= 364
    assert audit.events == []


async def test_expired_self_signed_is_renewed(
    manager: CertificateManager, clock: FakeClock, audit: Recorder
) -> None:
    calls: list[int] = []
    manager.add_listener(lambda: calls.append(1))
    old = manager.details()
    clock.advance(timedelta(days=400).total_seconds())
    assert manager.details().status is CertStatus.EXPIRED
    result = await manager.check()
    assert result.outcome is CheckOutcome.RENEWED and calls == [1]
    assert result.details.status is CertStatus.GOOD and result.details.is_self_signed
    assert result.details.fingerprint != old.fingerprint
    assert audit.actions() == [("certificate.renew", Outcome.SUCCESS)]
    assert audit.events[0].details["replaced"] == old.fingerprint


async def test_self_signed_expiring_soon_is_left_alone(
    manager: CertificateManager, clock: FakeClock, audit: Recorder
) -> None:
    clock.advance(timedelta(days=350).total_seconds())
    result = await manager.check()
    assert result.outcome is CheckOutcome.GOOD
    assert result.details.status is CertStatus.EXPIRES_SOON and audit.events == []


async def _ca_signed(manager: CertificateManager, pki: Pki, days: int) -> Issued:
    leaf = pki.leaf(not_after=NOW + timedelta(days=days))
    await manager.upload(pki.chain_pem(leaf))
    return leaf


async def test_ca_signed_expiring_is_reported(
    manager: CertificateManager, pki: Pki, clock: FakeClock, audit: Recorder
) -> None:
    await _ca_signed(manager, pki, 60)
    assert (await manager.check()).outcome is CheckOutcome.GOOD
    clock.advance(timedelta(days=40).total_seconds())
    result = await manager.check()
    assert result.outcome is CheckOutcome.EXPIRING and result.days_left == 20
    assert audit.actions()[-1] == ("certificate.expiring", Outcome.FAILURE)
    assert audit.events[-1].details["days_left"] == 20


async def test_ca_signed_expired_is_never_replaced(
    manager: CertificateManager, pki: Pki, clock: FakeClock, audit: Recorder
) -> None:
    leaf = await _ca_signed(manager, pki, 10)
    clock.advance(timedelta(days=11).total_seconds())
    result = await manager.check()
    assert result.outcome is CheckOutcome.EXPIRED and result.details.status is CertStatus.EXPIRED
    assert manager.download().startswith(leaf.cert_pem())
    assert audit.actions()[-1] == ("certificate.expired", Outcome.FAILURE)


# -- push certificates ----------------------------------------------------------------------


async def test_apns_upload(manager: CertificateManager, audit: Recorder) -> None:
    push = issue("Push Services: org.example.app", not_after=NOW + timedelta(days=200))
    d = await manager.upload_apns(
        p12(push, b"s3cret"), "s3cret", is_production=True, is_next_gen=False, by=ADMIN
    )
    assert d.slot == "legacy" and d.is_production and not d.is_next_gen
    assert d.subject == "CN=Push Services: org.example.app" and d.uploaded_at == NOW
    await manager.upload_apns(p12(push, None), "", is_production=False, is_next_gen=True)
    assert [(a.slot, a.is_production) for a in manager.apns_details()] == [
        ("legacy", True),
        ("next-gen", False),
    ]
    folder = manager.data_dir / "certs/apns"
    stored = folder / "legacy.pem"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    for f in folder.iterdir():
        assert b"s3cret" not in f.read_bytes()
    assert "PRIVATE KEY" in stored.read_text()
    meta = json.loads((folder / "legacy.json").read_text())
    assert meta["production"] is True and meta["fingerprint"] == d.fingerprint
    assert audit.actions()[0] == ("certificate.apns.upload", Outcome.SUCCESS)
    assert audit.events[0].target == "apns:legacy"


@pytest.mark.parametrize("case", ["wrong-password", "not-p12", "expired", "no-key"])
async def test_apns_refusals(manager: CertificateManager, audit: Recorder, case: str) -> None:
    from cryptography.hazmat.primitives.serialization import pkcs12

    push = issue("Push Services: org.example.app")
    data, message = p12(push, b"right"), "the password is wrong or the file is not PKCS#12"
    if case == "not-p12":
        data = b"not a pkcs12 file"
    elif case == "expired":
        old = issue("Push", not_after=NOW - timedelta(days=1))
        data, message = p12(old, b"right"), "the push certificate expired on"
    elif case == "no-key":
        data = pkcs12.serialize_key_and_certificates(
            b"push", None, push.cert, None, serialization.BestAvailableEncryption(b"right")
        )
        message = "must hold a certificate and its key"
    password = "wrong" if case == "wrong-password" else "right"
    with pytest.raises(CertificateError, match=message):
        await manager.upload_apns(data, password, is_production=False, is_next_gen=False)
    assert manager.apns_details() == ()
    assert audit.actions() == [("certificate.apns.upload", Outcome.FAILURE)]


# -- the real audit trail -------------------------------------------------------------------


async def test_entries_reach_the_audit_log(tmp_path: Path, pki: Pki) -> None:
    db = tmp_path / "carewire.db"
    clock = FakeClock(NOW)
    platform = await assemble(Options(url=f"sqlite+aiosqlite:///{db}", clock=clock))
    try:
        m = CertificateManager(tmp_path, DOMAIN, clock, platform.audit)
        await m.check()
        await m.upload(pki.chain_pem(pki.leaf()), by=Caller(actor="cli", channel=Channel.CLI))
        await m.delete(by=Caller(actor="cli", channel=Channel.CLI))
    finally:
        await platform.close()
    con = sqlite3.connect(db)
    try:
        rows = con.execute(
            "SELECT actor, channel, action, target, outcome FROM audit_log ORDER BY id"
        ).fetchall()
    finally:
        con.close()
    assert [r for r in rows if r[2].startswith("certificate.")] == [
        ("system", "system", "certificate.generate", DOMAIN, "success"),
        ("cli", "cli", "certificate.upload", DOMAIN, "success"),
        ("cli", "cli", "certificate.delete", DOMAIN, "success"),
        ("cli", "cli", "certificate.generate", DOMAIN, "success"),
    ]

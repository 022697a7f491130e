"""A real OpenLDAP server for the tests and the benchmark: Debian's ``slapd`` on loopback.

:func:`start_slapd` writes a temporary ``slapd.conf`` (mdb backend, the core,
cosine, nis and inetOrgPerson schemas), a private CA and a server certificate
for 127.0.0.1/localhost, loads generated people (``inetOrgPerson``) and groups
(``groupOfNames``) offline with ``slapadd``, and starts ``slapd`` on two free
loopback ports: ``ldap://`` (StartTLS) and ``ldaps://``. The bind account the
product uses (``cn=carewire,ou=services,…``) may read everything but
passwords; people may bind with their own password (``pw-<uid>``).

When ``slapd`` is missing the caller skips loudly, unless
``CAREWIRE_TEST_REQUIRE_SLAPD=1`` (CI sets it): then it fails.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SLAPD = "/usr/sbin/slapd"
SLAPADD = "/usr/sbin/slapadd"
SUFFIX = "dc=example,dc=org"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PW = "root-secret"
BIND_DN = f"cn=carewire,ou=services,{SUFFIX}"
BIND_PW = "bind-secret"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
REQUIRE = bool(os.environ.get("CAREWIRE_TEST_REQUIRE_SLAPD"))
MISSING = "Debian's slapd and ldap-utils are needed (apt-get install slapd ldap-utils)"
_SCHEMAS = ("core", "cosine", "nis", "inetorgperson")


def missing_reason() -> str | None:
    """Why slapd cannot run here (None: it can)."""
    if not Path(SLAPD).exists() or not Path(SLAPADD).exists():
        return MISSING
    if not Path("/etc/ldap/schema/inetorgperson.schema").exists():
        return MISSING + ": /etc/ldap/schema is missing"
    return None


def require_slapd() -> None:
    """Skip the caller (loudly) when slapd cannot run here, or fail when CI requires it."""
    import pytest

    reason = missing_reason()
    if reason is not None:
        if REQUIRE:
            pytest.fail(f"CAREWIRE_TEST_REQUIRE_SLAPD is set but {reason}")
        pytest.skip(reason)


def password_of(uid: str) -> str:
    """The generated person's password."""
    return f"pw-{uid}"


def person_ldif(
    uid: str, index: int, *, base: str = PEOPLE, email: str | None = None, extra: str = ""
) -> str:
    """One generated ``inetOrgPerson`` (LDIF, with a trailing blank line)."""
    mail = email if email is not None else f"{uid}@hospital.example"
    return (
        f"dn: uid={uid},{base}\n"
        "objectClass: inetOrgPerson\n"
        f"uid: {uid}\n"
        f"cn: Given{index} Family{index}\n"
        f"givenName: Given{index}\n"
        f"sn: Family{index}\n"
        f"mail: {mail}\n"
        f"title: Nurse {index % 7}\n"
        f"telephoneNumber: +1 555 01{index % 100:02d}\n"
        f"userPassword: {password_of(uid)}\n"
        f"{extra}\n"
    )


def group_ldif(name: str, members: Sequence[str], *, base: str = GROUPS, extra: str = "") -> str:
    """One ``groupOfNames`` (at least one member, as the schema requires)."""
    lines = [f"dn: cn={name},{base}", "objectClass: groupOfNames", f"cn: {name}"]
    lines += extra.splitlines()
    lines += [f"member: {dn}" for dn in members] or [f"member: {ROOT_DN}"]
    return "\n".join(lines) + "\n\n"


def directory_ldif(people: int, groups: int = 5, *, stamp: str = "") -> str:
    """The suffix, its units, the bind account, ``people`` people and ``groups`` groups.

    ``stamp`` (GeneralizedTime) gives the people that ``modifyTimestamp``, as if they
    were loaded then (slapadd keeps it), instead of the second of the load.
    """
    parts = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\n"
        "dc: example\no: Example\n\n",
        *(
            f"dn: ou={ou},{SUFFIX}\nobjectClass: organizationalUnit\nou: {ou}\n\n"
            for ou in ("people", "groups", "services")
        ),
        f"dn: {BIND_DN}\nobjectClass: person\ncn: carewire\nsn: service\n"
        f"userPassword: {BIND_PW}\n\n",
    ]
    uids = [f"user{i:05d}" for i in range(people)]
    extra = f"modifyTimestamp: {stamp}\ncreateTimestamp: {stamp}\n" if stamp else ""
    parts += [person_ldif(uid, i, extra=extra) for i, uid in enumerate(uids)]
    for g in range(groups):
        members = [f"uid={uid},{PEOPLE}" for i, uid in enumerate(uids) if i % groups == g]
        parts.append(group_ldif(f"Ward {g}", members, extra=extra))
    return "".join(parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class Slapd:
    """A running slapd.

    Attributes:
        url: ``ldap://127.0.0.1:PORT`` (StartTLS).
        ldaps_url: ``ldaps://127.0.0.1:PORT``.
        ca_file: The CA certificate that signed the server's certificate (PEM).
        workdir: Its configuration, database and log.
        people: How many generated people it was loaded with.
    """

    url: str
    ldaps_url: str
    ca_file: Path
    workdir: Path
    people: int

    def ldap(self, tool: str, *args: str, stdin: str = "") -> str:
        """Run an ldap-utils tool (``ldapmodify``…) as the root DN over StartTLS."""
        env = {**os.environ, "LDAPTLS_CACERT": str(self.ca_file), "LDAPTLS_REQCERT": "demand"}
        out = subprocess.run(
            [tool, "-x", "-ZZ", "-H", self.url, "-D", ROOT_DN, "-w", ROOT_PW, *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(f"{tool} failed ({out.returncode}): {out.stderr.strip()}")
        return out.stdout

    def modify(self, ldif: str) -> None:
        """Apply an LDIF change file (``changetype:`` records) with ldapmodify."""
        self.ldap("ldapmodify", stdin=ldif)

    def add(self, ldif: str) -> None:
        """Add entries (plain LDIF records) with ldapadd."""
        self.ldap("ldapmodify", "-a", stdin=ldif)


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _certificates(workdir: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1 and localhost: (ca, cert, key) files."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Hospital CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [x509.DNSName("localhost"), x509.IPAddress(IPv4Address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = (workdir / "ca.pem", workdir / "server.pem", workdir / "server.key")
    files[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


def _config(workdir: Path, ca: Path, cert: Path, key: Path) -> Path:
    includes = "".join(f"include /etc/ldap/schema/{s}.schema\n" for s in _SCHEMAS)
    conf = workdir / "slapd.conf"
    (workdir / "db").mkdir()
    conf.write_text(
        f"{includes}"
        f"pidfile {workdir / 'slapd.pid'}\n"
        "modulepath /usr/lib/ldap\n"
        "moduleload back_mdb\n"
        f"TLSCACertificateFile {ca}\n"
        f"TLSCertificateFile {cert}\n"
        f"TLSCertificateKeyFile {key}\n"
        "TLSProtocolMin 3.3\n"
        "sizelimit unlimited\n"
        "database mdb\n"
        f"suffix {SUFFIX}\n"
        f"rootdn {ROOT_DN}\n"
        f"rootpw {ROOT_PW}\n"
        f"directory {workdir / 'db'}\n"
        "maxsize 1073741824\n"
        "index objectClass,uid,mail,member eq\n"
        "index entryUUID,modifyTimestamp eq\n"
        "access to attrs=userPassword by anonymous auth by self write by * none\n"
        f'access to * by dn.exact="{BIND_DN}" read by users read by * none\n',
        encoding="utf-8",
    )
    return conf


def _wait_ready(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"slapd exited ({proc.returncode}): {log.read_text()[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"slapd did not listen within 20 s: {log.read_text()[-2000:]}")


def start_slapd(
    workdir: Path, *, people: int = 300, groups: int = 5, stamp: str = ""
) -> Generator[Slapd, None, None]:
    """Start slapd in ``workdir`` loaded with ``people`` people; stop it when the generator ends."""
    ca, cert, key = _certificates(workdir)
    conf = _config(workdir, ca, cert, key)
    data = workdir / "data.ldif"
    data.write_text(directory_ldif(people, groups, stamp=stamp), encoding="utf-8")
    subprocess.run(
        [SLAPADD, "-q", "-f", str(conf), "-l", str(data)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    port, tls_port = free_port(), free_port()
    url, ldaps = f"ldap://127.0.0.1:{port}", f"ldaps://127.0.0.1:{tls_port}"
    log = workdir / "slapd.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [SLAPD, "-d", "0", "-f", str(conf), "-h", f"{url}/ {ldaps}/"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_ready(proc, port, log)
        _wait_ready(proc, tls_port, log)
        yield Slapd(url=url, ldaps_url=ldaps, ca_file=ca, workdir=workdir, people=people)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        shutil.rmtree(workdir / "db", ignore_errors=True)

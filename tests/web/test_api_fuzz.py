"""An OpenAPI fuzz run of the REST API (``/api/v1``): no request makes it answer 5xx.

Every operation of the API's own OpenAPI document gets generated requests, valid and
invalid ones, sent in process with the admin token to the API over a real platform on
SQLite, with the audit trail and the certificate manager wired in as ``server.py`` does.
The platform holds the CALLS dataset with two records, its two adapters and two rules,
and a directory (hospitals 1 and 2, the user ana, group 1, invitation 1, affiliation 1,
ana's device 1); half of the requests to a path with parameters name those (CALLS,
record 1, rule 1, the DataUpdate adapter, organisation 1 …), so they get past "not found".

The ASGI test transport runs the app in an event loop thread of its own; the platform
opens there, on the app's lifespan startup (when the schema is loaded), so its database
is only used from the loop that serves the requests. The transport's pytest plugin ends
the lifespan, closing the platform, when the test ends. Each test starts from a file copy
of a database populated once per process (``_template``), so every operation sees the same
things and no test sees another's writes.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from starlette.types import Receive, Scope, Send

from carewire.assembly import Assembly, Options, assemble
from carewire.assembly_services import api_services
from carewire.clock import FakeClock
from carewire.core import hook_names as H
from carewire.core.kernel import DEFAULT_FEATURES
from carewire.datasets.query import Query
from carewire.directory.model import SYSTEM_CALLER, AdminInvitee, NewHospital, NewUser, Profile
from carewire.push.settings import PushSettings
from carewire.security.cert_manager import CertificateManager
from carewire.security.certificates import create_self_signed
from carewire.security.tokens import Role
from carewire.web.api import ROUTERS, create_api
from tests.hashing import CHEAP_HASHER
from tests.security.pki import DOMAIN, NOW
from tests.templates import prefill
from tests.web.conftest import CALLS, UPDATES, add_calls, alert_rule, update_rule

#: Every operation of the route list, as (method, path).
OPERATIONS = sorted(
    (method, route.path)
    for router in ROUTERS
    for route in router.routes
    if isinstance(route, APIRoute)
    for method in route.methods or ()
)
#: Operations left out: a generated LDAP integration would make the platform connect to
#: whatever host the fuzzer invents, and tests reach only loopback. Without one, every other
#: LDAP operation is fuzzed and answers "not found" (tests/web/test_ldap_api.py covers them).
NOT_FUZZED = {("PUT", "/organisations/{organisation_id}/ldap")}
FUZZED = [op for op in OPERATIONS if op not in NOT_FUZZED]

#: Path parameters naming things the platform holds (the first record and rule).
EXISTING: dict[str, object] = {
    "name": CALLS,
    "record_id": 1,
    "rule_id": 1,
    "reference_name": UPDATES,
    "login": "ana",
    "organisation_id": 1,
    "hospital_id": 1,
    "affiliation_id": 1,
    "invitation_id": 1,
    "group_id": 1,
    "device_id": 1,
}

#: No 5xx, and every response with a documented body matches it. Not checked: status codes
#: and media types, as the document lists neither the problem responses (401, 404, 409 …)
#: nor ``application/problem+json``.
CHECKS = [not_a_server_error, response_schema_conformance]

#: An operation of the document, and a request generated for one (the type parameters are
#: the OpenAPI loader's own parameter, response and schema classes).
Operation: TypeAlias = schemathesis.APIOperation[Any, Any, Any, Any]
FuzzCase: TypeAlias = schemathesis.Case[Operation]

#: Generated cases per operation (valid and invalid ones together).
MAX_EXAMPLES = 25


class PlatformApp:
    """The API over a platform that opens on lifespan startup and closes on shutdown.

    Attributes:
        root: The directory of the database and the certificate.
        admin_token: The admin token (set on startup).
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.admin_token = ""
        self._api: FastAPI | None = None
        self._platform: Assembly | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve ``scope``: the lifespan here, requests by the API."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        assert self._api is not None, "a request before lifespan startup"
        await self._api(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self._open()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._platform is not None:  # the features' writers drain and stop
                    await self._platform.kernel.hooks.fire(H.SERVER_STOPPING, None)
                    await self._platform.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _open(self) -> None:
        url = f"sqlite+aiosqlite:///{self.root / 'carewire.db'}"
        await _template(self.root / "carewire.db")
        self.admin_token = _TEMPLATE.admin_token
        clock = FakeClock(NOW)
        self._platform = platform = await assemble(_options(url, clock))
        certificates = CertificateManager(self.root, DOMAIN, clock, platform.audit)
        _copy_certificate(certificates.cert_file, certificates.key_file)
        # The XMPP kernel, as the server runs it, so /presence reaches a real gateway.
        platform.load_features(DEFAULT_FEATURES)
        await platform.kernel.hooks.fire(H.SERVER_STARTED, None)
        self._api = create_api(api_services(platform, certificates))


def _options(url: str, clock: FakeClock | None = None) -> Options:
    return Options(
        url=url,
        domain=DOMAIN,
        clock=clock or FakeClock(NOW),
        secret_hasher=CHEAP_HASHER,
        push=PushSettings(),  # the app server without providers: /push reads attempts
    )


@dataclass(slots=True)
class _Template:
    """The populated database every test starts from, made once per process."""

    path: Path | None = None
    admin_token: str = ""


_TEMPLATE = _Template()


async def _template(target: Path) -> None:
    """Copy the populated template database to ``target``, building it on first use.

    Building the platform's contents (datasets, records, rules, adapters, the directory
    with its hashed secrets, the token) took most of each test's second of setup; a file
    copy of the result gives every test the same starting point.
    """
    if _TEMPLATE.path is None:
        where = Path(tempfile.mkdtemp(prefix="carewire-fuzz-"))
        url = f"sqlite+aiosqlite:///{where / 'template.db'}"
        platform = await assemble(_options(await prefill(url)))
        try:
            await _populate(platform)
        finally:
            await platform.close()
        _TEMPLATE.path = where / "template.db"
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{_TEMPLATE.path}{suffix}")
        if source.exists():
            shutil.copyfile(source, Path(f"{target}{suffix}"))


async def _populate(platform: Assembly) -> None:
    """The datasets, records, rules, adapters, directory and admin token of the module."""
    await add_calls(platform)
    for bed, priority in (("A1", 1), ("B2", 3)):
        await platform.datasets.create(
            CALLS,
            {"call_id": f"call-{bed}", "bed": bed, "status": "Open", "priority": priority},
        )
    await platform.rules.import_rules([update_rule(), alert_rule()])
    _, _TEMPLATE.admin_token = await platform.tokens.create("admin-token", Role.ADMIN)
    await platform.ensure_default_adapters(DOMAIN)
    await _directory(platform)


#: One self-signed certificate for the whole module (key generation is the slow part).
_CERTIFICATE: dict[str, bytes] = {}


def _copy_certificate(cert_file: Path, key_file: Path) -> None:
    """Write the module's self-signed certificate and key, made on first use."""
    if not _CERTIFICATE:
        with tempfile.TemporaryDirectory() as tmp:
            cert, key = Path(tmp) / "c.pem", Path(tmp) / "c.key"
            create_self_signed(DOMAIN, cert, key, now=NOW)
            _CERTIFICATE.update(cert=cert.read_bytes(), key=key.read_bytes())
    cert_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.parent.mkdir(parents=True, exist_ok=True)
    cert_file.write_bytes(_CERTIFICATE["cert"])
    key_file.write_bytes(_CERTIFICATE["key"])
    key_file.chmod(0o600)


async def _directory(platform: Assembly) -> None:
    """Hospital 1 with the user ``ana`` (an account too), group 1, invitation 1 (its
    administrator's), affiliation 1 (hospital 2 in its community) and ana's device 1."""
    d = platform.directory
    admin = AdminInvitee(email="chief@one.example", first_name="Cy", last_name="Chief")
    for name in ("Hospital One", "Hospital Two"):
        await d.organisations.create_hospital(
            SYSTEM_CALLER, NewHospital(name=name, office_number="555-010-0000", admin=admin)
        )
        admin = AdminInvitee(email="chief@two.example", first_name="Cy", last_name="Two")
    profile = Profile(first_name="Ana", last_name="Lee", email="ana@one.example")
    ana = NewUser(profile=profile, login="ana", pin="2580", password="secret-secret-secret")
    await d.users.create(SYSTEM_CALLER, 1, ana)
    group = await d.groups.create(SYSTEM_CALLER, 1, "Nurses")
    await d.groups.add_members(SYSTEM_CALLER, group.id, ["ana"])
    await d.affiliations.add_community_member(SYSTEM_CALLER, 1, 2)
    users = await platform.datasets.query("USERS", Query(limit=1))
    device = {"name": "ana/phone", "status": "Registered", "vendor": "XMPP"}
    record = await platform.datasets.create("DEVICES", {**device, "usr": users.records[0].id})
    assert (group.id, record.id) == (1, 1)


@pytest.fixture
def fuzz_app(tmp_path: Path) -> PlatformApp:
    """The API app; its platform opens when the schema is loaded."""
    return PlatformApp(tmp_path)


@pytest.fixture
def fuzz_schema(fuzz_app: PlatformApp) -> schemathesis.BaseSchema:
    """The API's OpenAPI document, read from the app itself."""
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)


def cases(operation: Operation) -> st.SearchStrategy[FuzzCase]:
    """Valid and invalid requests to ``operation``, half of them on things that exist."""
    pinned: list[dict[str, object] | None] = [None]
    existing = {k: v for k, v in EXISTING.items() if f"{{{k}}}" in operation.path}
    if existing:
        pinned.append(existing)
    return st.one_of(
        [
            operation.as_strategy(generation_mode=mode, path_parameters=path_parameters)
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
            for path_parameters in pinned
        ]
    )


def test_every_operation_is_fuzzed(fuzz_schema: schemathesis.BaseSchema) -> None:
    documented = sorted(
        (method.upper(), path) for path in fuzz_schema for method in fuzz_schema[path]
    )
    assert documented == OPERATIONS


#: Reads first, then writes, then deletes: the things the platform holds are still there when
#: the operations that only read them are fuzzed.
_METHOD_ORDER = {"GET": 0, "POST": 1, "PUT": 2, "PATCH": 3, "DELETE": 4}


def _by_resource(operations: list[tuple[str, str]]) -> dict[str, list[tuple[str, str]]]:
    """The operations grouped by the first segment of their path, each group in order."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for method, path in operations:
        groups.setdefault(path.split("/")[1], []).append((method, path))
    for group in groups.values():
        group.sort(key=lambda op: (_METHOD_ORDER.get(op[0], len(_METHOD_ORDER)), op[1]))
    return groups


#: One test per resource, on one platform: building a platform and reading the document
#: cost more than fuzzing one operation.
RESOURCES = _by_resource(FUZZED)


@pytest.mark.parametrize("resource", sorted(RESOURCES))
def test_no_request_is_a_server_error(
    resource: str, fuzz_app: PlatformApp, fuzz_schema: schemathesis.BaseSchema
) -> None:
    for method, path in RESOURCES[resource]:
        try:
            _fuzz(fuzz_schema[path][method], fuzz_app.admin_token)
        except BaseException as failure:
            failure.add_note(f"while fuzzing {method} {path}")
            raise


def _fuzz(operation: Operation, token: str) -> None:
    """Generated requests to ``operation`` with the admin token: none may fail a check."""
    headers = {"Authorization": f"Bearer {token}"}

    @given(case=cases(operation))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        # Generating a rule or a dataset body is slow, and not what is tested here.
        suppress_health_check=[HealthCheck.too_slow],
    )
    def fuzz(case: FuzzCase) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    fuzz()

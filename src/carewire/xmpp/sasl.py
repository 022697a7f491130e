"""Server side of SASL mechanisms, sans-IO (RFC 6120 §6, RFC 5802/7677 SCRAM, RFC 4616 PLAIN).

Theory of operation: a mechanism object first parses the client's opening
message and answers :class:`NeedCredentials` naming the username; the
caller looks the stored keys up (asynchronously, elsewhere) and hands them to
:meth:`credentials`; from then on every client message yields a
:class:`Challenge`, :class:`Success` or :class:`Failure`. Unknown users get
deterministic fake keys so a SCRAM exchange looks the same whether or not the
account exists (RFC 5802 §5.1); the attempt fails at the proof.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Protocol

from scramp import ScramException, ScramMechanism
from scramp.utils import saslprep

SCRAM_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-1")
#: PBKDF2 rounds for new and changed passwords. They cost the *client* (and an
#: attacker holding a copy of the keys) at every login; the server stores the
#: derived StoredKey and ServerKey and checks a SCRAM proof with two HMACs and a
#: hash, whatever this number is (RFC 5802 §3). Only PLAIN derives on the server.
DEFAULT_ITERATIONS = 10_000
PLUS_MECHANISMS = ("SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS")
_HASHES = {"SCRAM-SHA-1": "sha1", "SCRAM-SHA-256": "sha256"}


@dataclass(frozen=True, slots=True)
class StoredKeys:
    """Salted SCRAM keys of one account for one hash (what the server stores)."""

    salt: bytes
    iterations: int
    stored_key: bytes
    server_key: bytes


@dataclass(frozen=True, slots=True)
class NeedCredentials:
    """Look up the keys of ``username`` for ``mechanism`` (a base mechanism name)."""

    username: str
    mechanism: str


@dataclass(frozen=True, slots=True)
class Challenge:
    """Send this challenge."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Success:
    """Authenticated as ``username``; send ``data`` with ``<success/>``."""

    username: str
    data: bytes | None


@dataclass(frozen=True, slots=True)
class Failure:
    """Authentication failed with an RFC 6120 §6.5 condition.

    ``counts`` is False for failures that say nothing about the password
    (malformed messages, aborted exchanges), which must not lock accounts.
    """

    condition: str
    text: str = ""
    username: str | None = None
    counts: bool = True


Step = NeedCredentials | Challenge | Success | Failure


class Mechanism(Protocol):
    """A server-side SASL mechanism instance (one per attempt)."""

    name: str

    def start(self, initial: bytes | None) -> Step:
        """The client's initial response (None: send an empty challenge first)."""

    def credentials(self, keys: StoredKeys | None) -> Step:
        """The keys asked for by :class:`NeedCredentials` (None: no such account)."""

    def respond(self, data: bytes) -> Step:
        """A client ``<response/>``."""


def derive_keys(password: str, mechanism: str, iterations: int = DEFAULT_ITERATIONS) -> StoredKeys:
    """Salted keys for ``password`` (RFC 5802 §3); the password itself is not kept.

    Raises:
        ValueError: SASLprep (RFC 4013) forbids the password, or the iteration count is too low.
    """
    try:
        salt, stored_key, server_key, i = ScramMechanism(mechanism).make_auth_info(
            password, iteration_count=iterations
        )
    except ScramException as exc:
        raise ValueError(_scram_text(exc)) from None
    return StoredKeys(salt=salt, iterations=i, stored_key=stored_key, server_key=server_key)


def check_password(password: str, mechanism: str, keys: StoredKeys) -> bool:
    """Whether ``password`` matches stored SCRAM keys (used by PLAIN)."""
    hf = _HASHES[mechanism]
    try:
        prepared = saslprep(password)
    except ScramException:
        return False
    salted = hashlib.pbkdf2_hmac(hf, prepared.encode("utf-8"), keys.salt, keys.iterations)
    client_key = hmac.new(salted, b"Client Key", hf).digest()
    return hmac.compare_digest(hashlib.new(hf, client_key).digest(), keys.stored_key)


def fake_keys(username: str, secret: bytes, iterations: int = DEFAULT_ITERATIONS) -> StoredKeys:
    """Deterministic keys for a non-existent account (no user enumeration).

    The salt is stable per name and the iteration count is the one new
    accounts get, so the server-first message of an unknown name looks like
    a known account's.
    """
    digest = hmac.new(secret, username.encode("utf-8"), "sha256").digest()
    # As long as a real salt (32 bytes, as derive_keys makes them), so its length tells nothing.
    salt = hmac.new(secret, b"salt\x00" + username.encode("utf-8"), "sha256").digest()
    return StoredKeys(salt=salt, iterations=iterations, stored_key=digest, server_key=digest)


def _unescape_saslname(value: str) -> str | None:
    """RFC 5802 §5.1: ',' and '=' travel as '=2C' and '=3D'; any other '=' is malformed."""
    if value.count("=") != value.count("=2C") + value.count("=3D"):
        return None
    return value.replace("=2C", ",").replace("=3D", "=")


def _username_of_client_first(message: str) -> str | None:
    """The ``n=`` attribute of a SCRAM client-first message."""
    parts = message.split(",", 3)
    if len(parts) < 4:
        return None
    for attr in parts[2:3]:
        if attr.startswith("n="):
            return _unescape_saslname(attr[2:])
    return None


class ScramServerMechanism:
    """SCRAM-SHA-1/-256 and their -PLUS variants, on top of scramp."""

    def __init__(
        self,
        name: str,
        *,
        channel_binding: bytes | None,
        fake_secret: bytes,
        fake_iterations: int = DEFAULT_ITERATIONS,
        ssdp: str | None = None,
    ) -> None:
        self.name = name
        self._ssdp = ssdp  # XEP-0474 downgrade protection: the 'h' attribute of server-first
        self._fake_iterations = fake_iterations
        self.base = name.removesuffix("-PLUS")
        self._cb = channel_binding
        self._fake_secret = fake_secret
        self._client_first = ""
        self._username = ""
        self._server: object | None = None
        self._is_unknown = False
        self._final_sent = False

    def start(self, initial: bytes | None) -> Step:
        if not initial:
            return Challenge(b"")  # RFC 6120 §6.4.2: the client then sends the initial response
        try:
            self._client_first = initial.decode("utf-8")
        except UnicodeDecodeError:
            return Failure("malformed-request", "client-first is not UTF-8", counts=False)
        username = _username_of_client_first(self._client_first)
        if not username:
            return Failure("malformed-request", "no username in client-first", counts=False)
        self._username = username
        return NeedCredentials(username=username, mechanism=self.base)

    def credentials(self, keys: StoredKeys | None) -> Step:
        self._is_unknown = keys is None
        if keys is None:
            keys = fake_keys(self._username, self._fake_secret, self._fake_iterations)
        auth = (keys.salt, keys.stored_key, keys.server_key, keys.iterations)
        cb = ("tls-server-end-point", self._cb) if self._cb is not None else None
        try:
            server = ScramMechanism(self.name).make_server(lambda _u: auth, channel_binding=cb)
            server.set_client_first(self._client_first)
            first: str = server.get_server_first()
        except ScramException as exc:
            return Failure("not-authorized", _scram_text(exc), self._username, counts=False)
        if self._ssdp is not None:
            # RFC 5802 §7 allows extensions after i=; the AuthMessage signs them, so
            # the attribute must be in the server-first scramp verifies the proof with.
            first = f"{first},h={self._ssdp}"
            server.server_first = first
        self._server = server
        return Challenge(first.encode("utf-8"))

    def respond(self, data: bytes) -> Step:
        if self._server is None:
            if not self._client_first:
                return self.start(data)
            return Failure("malformed-request", "unexpected response", counts=False)
        if self._final_sent:
            return Failure("malformed-request", "exchange already finished", counts=False)
        server = self._server
        try:
            server.set_client_final(data.decode("utf-8"))  # type: ignore[attr-defined]
            final: str = server.get_server_final()  # type: ignore[attr-defined]
        except (ScramException, UnicodeDecodeError):
            # A wrong proof is a wrong password: it counts toward the lockout.
            return Failure("not-authorized", "", self._username)
        if self._is_unknown:  # pragma: no cover - fake keys never verify
            return Failure("not-authorized", "", self._username)
        self._final_sent = True
        return Success(self._username, final.encode("utf-8"))


def _scram_text(exc: ScramException) -> str:
    return str(exc.args[0])  # scramp always passes a message


class PlainServerMechanism:
    """PLAIN (RFC 4616), offered only inside TLS; checked against the stored SCRAM keys."""

    name = "PLAIN"

    def __init__(
        self,
        *,
        domain: str,
        fake_secret: bytes = b"",
        fake_iterations: int = DEFAULT_ITERATIONS,
    ) -> None:
        self._domain = domain
        self._fake_secret = fake_secret
        self._fake_iterations = fake_iterations
        self._username = ""
        self._password = ""

    def start(self, initial: bytes | None) -> Step:
        if initial is None:
            return Challenge(b"")
        return self.respond(initial)

    def respond(self, data: bytes) -> Step:
        parts = data.split(b"\x00")
        if len(parts) != 3:
            return Failure(
                "malformed-request", "PLAIN needs authzid NUL authcid NUL password", counts=False
            )
        try:
            authzid, authcid, password = (p.decode("utf-8") for p in parts)
        except UnicodeDecodeError:
            return Failure("malformed-request", "not UTF-8", counts=False)
        if not authcid or not password:
            return Failure("malformed-request", "empty username or password", counts=False)
        self._username = authcid
        self._password = password
        if authzid and authzid.lower() not in (
            authcid.lower(),
            f"{authcid}@{self._domain}".lower(),
        ):
            return Failure("invalid-authzid", "", authcid, counts=False)
        return NeedCredentials(username=authcid, mechanism="SCRAM-SHA-256")

    def take_password(self) -> str:
        """The password received, for a check made elsewhere (forgotten here at once)."""
        password, self._password = self._password, ""
        return password

    def credentials(self, keys: StoredKeys | None) -> Step:
        password, self._password = self._password, ""
        if keys is None:
            # The same derivation as for a real account, so the answer takes as long.
            fake = fake_keys(self._username, self._fake_secret, self._fake_iterations)
            check_password(password, "SCRAM-SHA-256", fake)
            return Failure("not-authorized", "", self._username)
        if not check_password(password, "SCRAM-SHA-256", keys):
            return Failure("not-authorized", "", self._username)
        return Success(self._username, None)

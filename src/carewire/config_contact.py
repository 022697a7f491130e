"""The ``[contact]`` section: the server's contact addresses (XEP-0157), and its checks.

Kept apart from :mod:`carewire.config`, which reads it like every other section.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields

from carewire.errors import ConfigError

#: A URI as XEP-0157 wants them: a scheme, a colon, and no white space (RFC 3986 §3.1).
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s]+")
MAX_CONTACT_URI = 512


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactSection:
    """[contact]: the server's contact addresses, as URIs, in its disco#info (XEP-0157).

    Each key is a list of URIs (``mailto:``, ``xmpp:``, ``https:``, ``tel:``…);
    empty keys are not advertised.
    """

    abuse: tuple[str, ...] = ()
    admin: tuple[str, ...] = ()
    feedback: tuple[str, ...] = ()
    sales: tuple[str, ...] = ()
    security: tuple[str, ...] = ()
    status: tuple[str, ...] = ()
    support: tuple[str, ...] = ()

    def addresses(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """The XEP-0157 fields to advertise: (``abuse-addresses``, URIs), non-empty only."""
        return tuple(
            (f"{f.name}-addresses", getattr(self, f.name))
            for f in fields(self)
            if getattr(self, f.name)
        )


def check_contact(contact: ContactSection) -> None:
    """Refuse anything that is not a URI.

    Raises:
        ConfigError: Naming the key, e.g. ``contact.admin: 'it@h.example' is not a URI``.
    """
    for f in fields(contact):
        for uri in getattr(contact, f.name):
            if len(uri) > MAX_CONTACT_URI or not _URI.fullmatch(uri):
                raise ConfigError(
                    f"contact.{f.name}: {uri[:80]!r} is not a URI "
                    "(e.g. mailto:it@example.org, xmpp:admin@example.org, https://…)"
                )

"""Remote domain names as the federation policy keeps them (RFC 7622 §3.2 domainparts).

A remote domain is normalised as every XMPP address is
(:func:`carewire.xmpp.jid.normalize_domain`: lower case, one trailing dot
dropped, internationalised names as U-labels), so that the policy compares it
with the domain a stream announces. Refused, each with a message that says
why: empty or malformed names, wildcards (``*.example.org``: a partner is a
domain, not a pattern; each sub-domain that federates, such as
``chat.example.org``, is listed itself), IP literals (a federating server has a
name its certificate can carry), and this server's own domain and sub-domains.
"""

from __future__ import annotations

from carewire.errors import ValidationError
from carewire.xmpp.jid import InvalidJID, normalize_domain

#: The code of every refusal here (``invalid-domain``: HTTP 422).
INVALID_DOMAIN = "invalid-domain"


def remote_domain(text: str, *, local: str = "") -> str:
    """``text`` as a remote domain of the policy.

    Args:
        text: What an administrator typed (``Hospital-B.example.``, ``bücher.example``).
        local: This server's chat domain; it and its sub-domains are refused.

    Raises:
        ValidationError: ``invalid-domain``, saying why.
    """
    given = text.strip()
    if not given:
        raise ValidationError("a domain is required", code=INVALID_DOMAIN)
    if "*" in given:
        raise ValidationError(
            f"{given!r} is a wildcard: list each partner domain itself", code=INVALID_DOMAIN
        )
    if "@" in given or "/" in given:
        raise ValidationError(
            f"{given!r} is an address, not a domain: give only the part after '@'",
            code=INVALID_DOMAIN,
        )
    try:
        domain = normalize_domain(given)
    except InvalidJID as exc:
        raise ValidationError(
            f"{given!r} is not a valid domain ({exc})", code=INVALID_DOMAIN
        ) from None
    if domain.startswith("[") or domain.replace(".", "").isdigit():
        raise ValidationError(
            f"{given!r} is an IP address: federation needs the partner's domain name",
            code=INVALID_DOMAIN,
        )
    own = local.lower().rstrip(".")
    if own and (domain == own or domain.endswith("." + own)):
        raise ValidationError(
            f"{domain} is this server's own domain, not a remote one", code=INVALID_DOMAIN
        )
    return domain


def lookup_key(text: str) -> str | None:
    """``text`` normalised for a lookup (None: it cannot be a domain of the policy)."""
    try:
        return normalize_domain(text)
    except InvalidJID:
        return None


def ascii_form(domain: str) -> str:
    """The A-label form of a normalised domain (what certificates carry)."""
    try:
        return domain.encode("idna").decode("ascii")
    except UnicodeError:
        return domain

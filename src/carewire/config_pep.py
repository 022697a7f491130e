"""``[pep]`` of ``carewire.toml``: personal eventing limits and the end-to-end encryption policy.

Kept beside :mod:`carewire.config` (which registers the section) so that module stays
within its size; each value is checked when the section is built. See docs/pep.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from carewire.errors import ConfigError


@dataclass(frozen=True, slots=True, kw_only=True)
class PepSection:
    """[pep]: personal eventing (docs/pep.md)."""

    item_max_bytes: int = 65_536  # one published item's payload, serialised
    avatar_max_bytes: int = 196_608  # an avatar image item (base64), below xmpp.max_stanza_bytes
    max_items: int = 256  # items per node at most ('max' in publish-options means this)
    max_nodes: int = 256  # nodes per account at most
    e2e_encryption: str = "refuse"  # OMEMO device lists and bundles: "allow" or "refuse"
    e2e_reason: str = ""  # what refused clients are told; empty: the built-in reason

    def __post_init__(self) -> None:
        """Refuse values the server could not honour."""
        if self.e2e_encryption not in ("allow", "refuse"):
            raise ConfigError(
                f"pep.e2e_encryption: expected allow or refuse, got {self.e2e_encryption!r}"
            )
        for key in ("item_max_bytes", "avatar_max_bytes", "max_items", "max_nodes"):
            if getattr(self, key) < 1:
                raise ConfigError(f"pep.{key}: must be at least 1")

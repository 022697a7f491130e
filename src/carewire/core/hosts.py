"""The addresses this server answers for: DOMAIN and its chat., patients., groups., upload.

and push. services, plus the domains of external components (XEP-0114) the operator configures.
"""

from __future__ import annotations

from dataclasses import dataclass

from carewire.xmpp.jid import JID


@dataclass(frozen=True, slots=True, kw_only=True)
class Hosts:
    """The chat domain and its sub-services."""

    domain: str
    # External components' domains (XEP-0114): served over their own streams, not by features.
    components: frozenset[str] = frozenset()

    @property
    def chat_domain(self) -> str:
        """Multi-user conversations and alerts live here (XEP-0045 service)."""
        return f"chat.{self.domain}"

    @property
    def patients_domain(self) -> str:
        """Patients addressable as ``MRN@patients.DOMAIN``."""
        return f"patients.{self.domain}"

    @property
    def groups_domain(self) -> str:
        """Directory groups addressable as ``<slug>@groups.DOMAIN`` (one message, every member)."""
        return f"groups.{self.domain}"

    @property
    def upload_domain(self) -> str:
        """The file sharing service (XEP-0363 HTTP File Upload)."""
        return f"upload.{self.domain}"

    @property
    def push_domain(self) -> str:
        """The server's own push app server (XEP-0357 §5, docs/push.md)."""
        return f"push.{self.domain}"

    @property
    def domain_jid(self) -> JID:
        """The server's own JID."""
        return JID.parse(self.domain)

    @property
    def subdomains(self) -> frozenset[str]:
        """Sub-services hosted here."""
        return frozenset(
            {
                self.chat_domain,
                self.patients_domain,
                self.groups_domain,
                self.upload_domain,
                self.push_domain,
            }
        )

    def is_local(self, domain: str) -> bool:
        """Whether ``domain`` is the chat domain, one of its sub-services or a component's."""
        return domain == self.domain or domain in self.subdomains or domain in self.components

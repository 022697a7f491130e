"""The hospital's end-to-end encryption policy for OMEMO (XEP-0384) device lists and bundles.

Clients that encrypt end to end find their contacts' devices in PEP: the
``eu.siacs.conversations.axolotl.devicelist`` node and its
``…axolotl.bundles:<device id>`` nodes (OMEMO 0.3), or ``urn:xmpp:omemo:2:devices``
and ``urn:xmpp:omemo:2:bundles`` (OMEMO 1). When the policy refuses, publishes
and node creation there get ``<not-allowed/>`` with the policy's reason as the
error text, the account's disco#info carries the policy in a
``urn:carewire:e2e:0`` form (XEP-0128), and the device lists already stored are
emptied at start-up so clients stop encrypting to devices they think exist.
Why refuse by default: docs/pep.md ("End-to-end encryption").
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from xml.etree.ElementTree import Element, SubElement

from carewire.xmpp import ns
from carewire.xmpp.errors import StanzaCondition, StanzaError

AXOLOTL = "eu.siacs.conversations.axolotl"
AXOLOTL_DEVICELIST = f"{AXOLOTL}.devicelist"
AXOLOTL_BUNDLES = f"{AXOLOTL}.bundles:"
OMEMO2 = "urn:xmpp:omemo:2"
OMEMO2_DEVICES = f"{OMEMO2}:devices"
OMEMO2_BUNDLES = f"{OMEMO2}:bundles"
DEVICE_LISTS = (AXOLOTL_DEVICELIST, OMEMO2_DEVICES)
#: FORM_TYPE of the policy in the account's disco#info.
E2E_FORM = "urn:carewire:e2e:0"
DEFAULT_REASON = (
    "End-to-end encryption is turned off by the hospital: clinical messages must stay "
    "readable for the record, alerts and archiving."
)


class E2EMode(StrEnum):
    """``[pep] e2e_encryption``."""

    ALLOW = "allow"
    REFUSE = "refuse"


@dataclass(frozen=True, slots=True, kw_only=True)
class E2EPolicy:
    """Whether clients may publish OMEMO keys here, and the reason they are shown if not."""

    mode: E2EMode = E2EMode.REFUSE
    reason: str = DEFAULT_REASON

    @property
    def is_refused(self) -> bool:
        """Whether OMEMO publishes are refused."""
        return self.mode is E2EMode.REFUSE


def is_omemo_node(node: str) -> bool:
    """Whether ``node`` holds OMEMO device lists or key bundles."""
    return node in DEVICE_LISTS or node.startswith(AXOLOTL_BUNDLES) or node == OMEMO2_BUNDLES


def check(policy: E2EPolicy, node: str) -> None:
    """Refuse a write to an OMEMO node while the policy refuses.

    Raises:
        StanzaError: ``not-allowed`` (type cancel) with the policy's reason as text.
    """
    if policy.is_refused and is_omemo_node(node):
        raise StanzaError(StanzaCondition.NOT_ALLOWED, policy.reason, error_type="cancel")


def empty_device_list(node: str) -> Element:
    """The payload of an emptied device list of ``node``."""
    if node == OMEMO2_DEVICES:
        return Element(f"{{{OMEMO2}}}devices")
    return Element(f"{{{AXOLOTL}}}list")


def disco_form(policy: E2EPolicy) -> Element:
    """The policy as an XEP-0128 extension of the account's disco#info."""
    form = Element(f"{{{ns.DATA_FORMS}}}x", {"type": "result"})
    for var, value in (
        ("FORM_TYPE", E2E_FORM),
        ("e2e-encryption", policy.mode.value),
        ("reason", policy.reason if policy.is_refused else ""),
    ):
        attrs = {"var": var}
        if var == "FORM_TYPE":
            attrs["type"] = "hidden"
        field = SubElement(form, f"{{{ns.DATA_FORMS}}}field", attrs)
        SubElement(field, f"{{{ns.DATA_FORMS}}}value").text = value
    return form

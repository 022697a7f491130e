"""XEP-0398: PEP avatars (XEP-0084) and vCard avatars (XEP-0153) kept as one picture.

- PEP → vCard (§3.1, a MUST): a publish to ``urn:xmpp:avatar:metadata`` looks up
  the image in ``urn:xmpp:avatar:data`` under the id of the first ``<info/>``
  without a URL, checks its SHA-1, and stores it as the vCard's ``PHOTO``; an
  empty ``<metadata/>`` removes the photo.
- vCard → PEP (§3.2): a vCard set with a ``PHOTO`` publishes the image to the data
  node and then one ``<info/>`` to the metadata node (subscribers are notified).
- Presence (§4): every available presence gets ``<x xmlns='vcard-temp:x:update'>
  <photo>SHA-1</photo></x>`` unless the client sent an empty ``<photo/>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
from xml.etree.ElementTree import Element, SubElement

from carewire.core.events import AccountEvent
from carewire.core.feature import FeatureContext
from carewire.features.pep.service import (
    AVATAR_DATA,
    AVATAR_METADATA,
    ChangeKind,
    PepChange,
    PepService,
)
from carewire.features.vcard import VCARD
from carewire.xmpp import ns
from carewire.xmpp.errors import RemoteProtocolError, StanzaError
from carewire.xmpp.parser import parse_document
from carewire.xmpp.xml import serialize

log = logging.getLogger(__name__)

CONVERSION_FEATURE = "urn:xmpp:pep-vcard-conversion:0"
VCARD_UPDATE = "vcard-temp:x:update"
_V = f"{{{ns.VCARD}}}"
_X = f"{{{VCARD_UPDATE}}}x"
_PHOTO = f"{{{VCARD_UPDATE}}}photo"
_INFO = f"{{{AVATAR_METADATA}}}info"
#: Avatar hashes kept in memory, at most (one per account that was online).
MAX_CACHED = 100_000


def decode(b64: str) -> bytes | None:
    """Base64 image bytes (whitespace allowed, as vCards fold lines), or None."""
    try:
        return base64.b64decode("".join(b64.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


def sha1_hex(data: bytes) -> str:
    """XEP-0084 §4.2: the item id is the SHA-1 of the image, in hex."""
    return hashlib.sha1(data).hexdigest()  # an identifier, not a security measure


def with_photo(vcard: Element | None, mime: str | None, b64: str | None) -> Element:
    """``vcard`` (or an empty one) with its PHOTO replaced, or removed when ``b64`` is None."""
    out = Element(VCARD) if vcard is None else vcard
    for photo in out.findall(f"{_V}PHOTO"):
        out.remove(photo)
    if b64 is not None:
        photo = SubElement(out, f"{_V}PHOTO")
        SubElement(photo, f"{_V}TYPE").text = mime or "image/png"
        SubElement(photo, f"{_V}BINVAL").text = b64
    return out


class AvatarSync:
    """Converts between the two avatar stores and stamps presence with the hash."""

    def __init__(self, ctx: FeatureContext, service: PepService) -> None:
        self.ctx = ctx
        self.service = service
        self._hashes: dict[str, str] = {}  # login → SHA-1 hex, "" for no avatar

    def forget(self, event: AccountEvent) -> None:
        """An account was removed: drop its cached hash."""
        self._hashes.pop(event.login, None)

    async def current_hash(self, login: str) -> str:
        """The SHA-1 of ``login``'s avatar ("" if none), from memory or the metadata node."""
        cached = self._hashes.get(login)
        if cached is not None:
            return cached
        found = ""
        items = await self.ctx.stores.pep.items(login, AVATAR_METADATA, limit=1)
        if items:
            try:
                if parse_document(items[0].payload).find(_INFO) is not None:
                    found = items[0].item_id
            except RemoteProtocolError:
                pass
        else:
            found = await self._vcard_hash(login)
        if len(self._hashes) < MAX_CACHED:
            self._hashes[login] = found
        return found

    async def _vcard_hash(self, login: str) -> str:
        xml = await self.ctx.stores.vcards.get(login)
        if xml is None:
            return ""
        try:
            binval = parse_document(xml).findtext(f"{_V}PHOTO/{_V}BINVAL")
        except RemoteProtocolError:
            return ""
        data = decode(binval) if binval else None
        return sha1_hex(data) if data else ""

    async def stamp(self, login: str, presence: Element) -> None:
        """XEP-0398 §4: put the avatar hash in an available presence."""
        x = presence.find(_X)
        photo = x.find(_PHOTO) if x is not None else None
        if photo is not None and not (photo.text or "").strip():
            return  # "an empty photo element ... the server ... doesn't touch"
        digest = await self.current_hash(login)
        if not digest:
            return
        if x is None:
            x = SubElement(presence, _X)
        if photo is None:
            photo = SubElement(x, _PHOTO)
        photo.text = digest

    async def from_pep(self, change: PepChange) -> None:
        """Metadata listener (XEP-0398 §3.1): the vCard's PHOTO follows the PEP avatar."""
        if change.internal or change.kind is not ChangeKind.PUBLISHED or change.payload is None:
            if change.kind is not ChangeKind.PUBLISHED:
                self._hashes.pop(change.owner, None)
            return
        infos = [i for i in change.payload.findall(_INFO) if not i.get("url")]
        if not infos:
            self._hashes[change.owner] = ""
            await self._save_vcard(change.owner, None, None)
            return
        info = infos[0]
        image_id = info.get("id", "")
        data_items = await self.ctx.stores.pep.items(change.owner, AVATAR_DATA, ids=[image_id])
        b64 = parse_document(data_items[0].payload).text if data_items else None
        data = decode(b64) if b64 else None
        # §3.1: "Services SHOULD verify that the SHA-1 hash of the image matches the id."
        if data is None or sha1_hex(data) != image_id:
            log.debug("an avatar's metadata names no matching image; the vCard is unchanged")
            return
        self._hashes[change.owner] = image_id
        await self._save_vcard(change.owner, info.get("type"), base64.b64encode(data).decode())

    async def _save_vcard(self, login: str, mime: str | None, b64: str | None) -> None:
        xml = await self.ctx.stores.vcards.get(login)
        vcard = None
        if xml is not None:
            try:
                vcard = parse_document(xml)
            except RemoteProtocolError:
                vcard = None
        if b64 is None and (vcard is None or vcard.find(f"{_V}PHOTO") is None):
            return
        await self.ctx.stores.vcards.set(login, serialize(with_photo(vcard, mime, b64), None))

    async def from_vcard(self, login: str, vcard: Element) -> None:
        """vCard listener (XEP-0398 §3.2): publish the PHOTO to the avatar nodes."""
        binval = vcard.findtext(f"{_V}PHOTO/{_V}BINVAL")
        data = decode(binval) if binval else None
        previous = await self.current_hash(login)
        try:
            if data is None:
                if previous:
                    empty = Element(f"{{{AVATAR_METADATA}}}metadata")
                    await self.service.publish(
                        login, AVATAR_METADATA, "current", empty, internal=True
                    )
                self._hashes[login] = ""
                return
            digest = sha1_hex(data)
            if digest == previous:
                return
            payload = Element(f"{{{AVATAR_DATA}}}data")
            payload.text = base64.b64encode(data).decode()
            await self.service.publish(login, AVATAR_DATA, digest, payload, internal=True)
            metadata = Element(f"{{{AVATAR_METADATA}}}metadata")
            mime = (vcard.findtext(f"{_V}PHOTO/{_V}TYPE") or "image/png").strip()
            SubElement(metadata, _INFO, {"id": digest, "bytes": str(len(data)), "type": mime})
            await self.service.publish(login, AVATAR_METADATA, digest, metadata, internal=True)
            self._hashes[login] = digest
        except StanzaError as exc:  # e.g. the photo is over the avatar limit
            log.warning("a vCard photo was not converted to a PEP avatar: %s", exc.condition.value)

"""XEP-0363 HTTP File Upload: the ``upload.DOMAIN`` service that hands out upload slots.

Theory of operation. The router hands every stanza for ``upload.DOMAIN`` to
this service (``Router.add_service``; the server's disco#items lists it). It
answers disco#info (identity ``store/file``, feature
``urn:xmpp:http:upload:0`` and, XEP-0363 §3, "the maximum file size ... The
field name MUST be "max-file-size" and the value MUST be in bytes"),
disco#items (nothing), and slot requests from this server's accounts: the
:class:`~carewire.uploads.UploadService` checks the size limit and the
quota, and gives the PUT and GET URLs on the HTTPS port, where
:mod:`carewire.web.upload` receives and serves the file. A file lives as
long as its uploader's organisation's Message Expiration Time (the expiry
feature's lifetimes; 7 days without it), then the sweep deletes it.

Refusals (XEP-0363 §5): a file over the limit is ``not-acceptable`` with
``<file-too-large><max-file-size>N</max-file-size></file-too-large>``; a
full quota ``resource-constraint`` (type ``wait``); a malformed request
``bad-request``; anyone not of this server ``not-allowed``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Final
from xml.etree.ElementTree import Element, SubElement

from carewire.core.feature import FeatureContext
from carewire.core.sessions import Session
from carewire.features.expiry.policy import DEFAULT_LIFETIME, OrganisationLifetimes
from carewire.uploads import UploadError, UploadService
from carewire.xmpp import ns
from carewire.xmpp import stanza as st
from carewire.xmpp.errors import StanzaCondition, StanzaError
from carewire.xmpp.jid import JID
from carewire.xmpp.xml import make

log = logging.getLogger(__name__)

NS: Final = "urn:xmpp:http:upload:0"
REQUEST: Final = f"{{{NS}}}request"
INFO: Final = f"{{{ns.DISCO_INFO}}}query"
ITEMS: Final = f"{{{ns.DISCO_ITEMS}}}query"
NAME: Final = "HTTP File Upload"

_CONDITIONS: Final = {
    "file-too-large": StanzaCondition.NOT_ACCEPTABLE,
    "quota": StanzaCondition.RESOURCE_CONSTRAINT,
    "bad-request": StanzaCondition.BAD_REQUEST,
    "unavailable": StanzaCondition.SERVICE_UNAVAILABLE,
}


def slot_element(put_url: str, get_url: str) -> Element:
    """``<slot><put url=…/><get url=…/></slot>`` (XEP-0363 §4)."""
    slot = Element(f"{{{NS}}}slot")
    SubElement(slot, f"{{{NS}}}put", {"url": put_url})
    SubElement(slot, f"{{{NS}}}get", {"url": get_url})
    return slot


def stanza_error(err: UploadError) -> StanzaError:
    """The stanza error for a refused slot request."""
    condition = _CONDITIONS.get(err.code, StanzaCondition.INTERNAL_SERVER_ERROR)
    if err.code == "file-too-large" and err.limit is not None:
        app = make(
            f"{{{NS}}}file-too-large",
            None,
            make(f"{{{NS}}}max-file-size", text=str(err.limit)),
        )
        return StanzaError(condition, err.message, error_type="modify", app_condition=app)
    if err.code == "quota":
        return StanzaError(condition, err.message, error_type="wait")
    return StanzaError(condition, err.message)


class UploadComponent:
    """The ``upload.DOMAIN`` service: disco and slot requests."""

    def __init__(self, ctx: FeatureContext, service: UploadService) -> None:
        self.ctx = ctx
        self.service = service
        self.jid = ctx.hosts.upload_domain

    async def __call__(
        self, stanza: Element, from_jid: JID, to: JID, origin: Session | None
    ) -> None:
        """Handle one stanza to ``upload.DOMAIN`` (raises StanzaError to refuse it)."""
        if stanza.tag != st.IQ:
            if stanza.tag == f"{{{ns.CLIENT}}}message":
                raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)
            return  # presence to the service: nothing to do
        if stanza.get("type") not in ("get", "set") or len(stanza) == 0:
            return  # responses: we never ask
        if to.localpart is not None or to.resource is not None:
            raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)
        payload = stanza[0]
        if payload.tag == INFO and stanza.get("type") == "get":
            result = self._info(payload)
        elif payload.tag == ITEMS and stanza.get("type") == "get":
            result = Element(ITEMS)
        elif payload.tag == REQUEST and stanza.get("type") == "get":
            result = await self._slot(payload, from_jid)
        else:
            raise StanzaError(StanzaCondition.SERVICE_UNAVAILABLE)
        reply = st.iq_result(stanza, result)
        reply.set("from", self.jid)
        session = self.ctx.sessions.get(from_jid)
        if session is not None:
            self.ctx.router.deliver(session, reply)

    def _info(self, payload: Element) -> Element:
        if payload.get("node") is not None:
            raise StanzaError(StanzaCondition.ITEM_NOT_FOUND, "unknown node")
        query = Element(INFO)
        SubElement(
            query,
            f"{{{ns.DISCO_INFO}}}identity",
            {"category": "store", "type": "file", "name": NAME},
        )
        for var in (ns.DISCO_INFO, ns.DISCO_ITEMS, NS):
            SubElement(query, f"{{{ns.DISCO_INFO}}}feature", {"var": var})
        form = SubElement(query, f"{{{ns.DATA_FORMS}}}x", {"type": "result"})
        for var, value, kind in (
            ("FORM_TYPE", NS, "hidden"),
            ("max-file-size", str(self.service.settings.max_file_size), None),
        ):
            field = SubElement(form, f"{{{ns.DATA_FORMS}}}field", {"var": var})
            if kind:
                field.set("type", kind)
            SubElement(field, f"{{{ns.DATA_FORMS}}}value").text = value
        return query

    async def _slot(self, request: Element, from_jid: JID) -> Element:
        if from_jid.domain != self.ctx.hosts.domain or from_jid.localpart is None:
            raise StanzaError(StanzaCondition.NOT_ALLOWED, "only this server's users may upload")
        filename = request.get("filename")
        size_text = (request.get("size") or "").strip()
        # XEP-0363 §4: "This element MUST include the attributes filename and size".
        if filename is None or not size_text.isdigit() or len(size_text) > 18:
            raise StanzaError(
                StanzaCondition.BAD_REQUEST, "the request needs a filename and a size in bytes"
            )
        lifetimes = self.ctx.find(OrganisationLifetimes)
        sender = str(from_jid.bare)
        lifetime = lifetimes.lifetime(sender) if lifetimes is not None else DEFAULT_LIFETIME
        try:
            slot = await self.service.request_slot(
                owner=from_jid.localpart,
                filename=filename,
                size=int(size_text),
                content_type=request.get("content-type"),
                lifetime=lifetime,
            )
        except UploadError as err:
            raise stanza_error(err) from None
        return slot_element(slot.put_url, slot.get_url)


def setup(ctx: FeatureContext) -> None:
    """Serve ``upload.DOMAIN`` and sweep expired files (when the composition root gives a
    :class:`UploadService`; without one, file sharing is off)."""
    service = ctx.find(UploadService)
    if service is None:
        log.info("file sharing is off (no upload directory)")
        return
    ctx.router.add_service(ctx.hosts.upload_domain, UploadComponent(ctx, service))
    ctx.every("upload-sweep", SWEEP_INTERVAL, _sweeper(service))


#: Seconds between sweeps of expired uploads.
SWEEP_INTERVAL = 60.0


def _sweeper(service: UploadService) -> Callable[[], Awaitable[None]]:
    async def sweep() -> None:
        await service.sweep()

    return sweep

"""XEP-0156 §3: ``/.well-known/host-meta`` tells web clients where the WebSocket endpoint is.

A browser cannot look up DNS SRV records, so a web client of ``chat.hospital.example``
fetches ``https://chat.hospital.example/.well-known/host-meta`` (RFC 6415) and reads the
link of relation ``urn:xmpp:alt-connections:websocket``. The XML form is required, the
JSON form (``host-meta.json``) optional; both are served. Web clients are hosted on other
origins, so both answers allow any origin to read them (they hold nothing private).
"""

from __future__ import annotations

import json
from xml.sax.saxutils import quoteattr

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

WEBSOCKET_REL = "urn:xmpp:alt-connections:websocket"
XRD_NS = "http://docs.oasis-open.org/ns/xri/xrd-1.0"
WEBSOCKET_PATH = "/xmpp-websocket"
_ANY_ORIGIN = {"Access-Control-Allow-Origin": "*", "Cache-Control": "max-age=3600"}


def websocket_url(domain: str, port: int, configured: str = "") -> str:
    """The WebSocket endpoint clients are told of: ``configured``, else ours by domain."""
    if configured:
        return configured
    return f"wss://{domain}{'' if port == 443 else f':{port}'}{WEBSOCKET_PATH}"


def host_meta_xml(url: str) -> str:
    """The XRD document (RFC 6415 §3) with the WebSocket link."""
    return (
        "<?xml version='1.0' encoding='utf-8'?>\n"
        f"<XRD xmlns='{XRD_NS}'>\n"
        f"  <Link rel='{WEBSOCKET_REL}' href={quoteattr(url)}/>\n"
        "</XRD>\n"
    )


def host_meta_json(url: str) -> str:
    """The JSON form (JRD, RFC 6415 Appendix A) with the WebSocket link."""
    return json.dumps({"links": [{"rel": WEBSOCKET_REL, "href": url}]}, indent=2) + "\n"


def host_meta_routes(url: str) -> list[Route]:
    """``/.well-known/host-meta`` and ``/.well-known/host-meta.json`` for ``url``."""
    xml, jrd = host_meta_xml(url), host_meta_json(url)

    async def as_xml(_request: Request) -> Response:
        return Response(xml, media_type="application/xrd+xml", headers=_ANY_ORIGIN)

    async def as_json(_request: Request) -> Response:
        return Response(jrd, media_type="application/json", headers=_ANY_ORIGIN)

    return [
        Route("/.well-known/host-meta", as_xml, methods=["GET", "HEAD"]),
        Route("/.well-known/host-meta.json", as_json, methods=["GET", "HEAD"]),
    ]

"""XEP-0363 file sharing on the HTTPS port: ``PUT`` and ``GET /upload/<secret>/<filename>``.

Theory of operation. The URLs come from a slot (:mod:`carewire.features.upload`);
their secret part is the only credential ("everyone who knows the URL SHOULD
be able to access it", XEP-0363 §2). A ``PUT`` streams its body into the
upload service, which encrypts it chunk by chunk (one chunk in memory at a
time) and answers 201; a ``GET`` streams the file back, decrypted the same
way. These routes sit outside the general request-body cap of
:mod:`carewire.web.guard` (the slot's size is their cap) but inside its
response headers.

A file is served so that it cannot act in our origin: ``nosniff``, a
sandboxing ``Content-Security-Policy``, and ``Content-Disposition:
attachment`` for every type that a browser would run or render as a page
(only images, audio, video and PDF are ``inline``). ``Access-Control-Allow-Origin: *``
lets web clients use the URLs (the URL is the credential; no cookie is read).

Errors are problem details (RFC 9457): 400 (body shorter than the slot,
malformed), 403 (the slot's PUT URL has expired), 404 (unknown, not yet
uploaded, expired or deleted), 409 (the slot was used), 411 (no
Content-Length), 413 (a body longer than the slot), 415 (a Content-Type not the slot's).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from carewire.security.envelope import EncryptionError
from carewire.uploads import UploadError, UploadService
from carewire.web.api.problems import problem

log = logging.getLogger(__name__)

_STATUS = {
    "bad-request": 400,
    "size-mismatch": 400,
    "expired": 403,
    "not-found": 404,
    "conflict": 409,
    "length-required": 411,
    "too-large": 413,
    "type-mismatch": 415,
}
#: Served files never run in our origin (no script, no plugin, no frame, no form).
FILE_CSP = "default-src 'none'; sandbox; frame-ancestors 'none'; form-action 'none'"
_INLINE = ("image/", "audio/", "video/")
_INLINE_EXACT = frozenset({"application/pdf"})
_NOT_INLINE = frozenset({"image/svg+xml"})  # an SVG may carry script
_CORS = {
    "access-control-allow-origin": "*",
    "access-control-allow-methods": "GET, HEAD, PUT, OPTIONS",
    "access-control-allow-headers": "Content-Type",
    "access-control-max-age": "86400",
}


def disposition(content_type: str, filename: str) -> str:
    """The ``Content-Disposition`` of a served file (RFC 6266, RFC 8187 for the name)."""
    base = content_type.split(";")[0].strip().lower()
    is_inline = base not in _NOT_INLINE and (base.startswith(_INLINE) or base in _INLINE_EXACT)
    ascii_name = "".join(c if 0x20 <= ord(c) < 0x7F and c not in '"\\' else "_" for c in filename)
    kind = "inline" if is_inline else "attachment"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _error(err: UploadError) -> JSONResponse:
    status = _STATUS.get(err.code, 500)
    return problem(status, err.code, err.message, headers=_CORS)


def create_upload_app(service: UploadService) -> Starlette:
    """The ASGI app of ``/upload/<secret>/<filename>`` (see :func:`carewire.web.app.create_app`)."""

    async def put(request: Request) -> Response:
        declared = request.headers.get("content-length")
        length = int(declared) if declared is not None and declared.isdigit() else None
        try:
            await service.receive(
                request.path_params["token"],
                request.path_params["filename"],
                length=length,
                content_type=request.headers.get("content-type"),
                body=request.stream(),
                remote_ip=request.client.host if request.client else "",
            )
        except ClientDisconnect:
            # The client went away mid-body (a phone out of coverage): the slot is free again.
            log.info("upload PUT abandoned by the client")
            return Response(status_code=400, headers=_CORS)
        except UploadError as err:
            log.info("upload PUT refused: %s", err.code)
            response = _error(err)
            if err.code in ("too-large", "size-mismatch", "conflict", "expired"):
                # The body was not read (or not all of it): end the connection after answering.
                response.headers["connection"] = "close"
            return response
        return Response(status_code=201, headers=_CORS)

    async def get(request: Request) -> Response:
        try:
            download = await service.download(
                request.path_params["token"], request.path_params["filename"]
            )
        except UploadError as err:
            return _error(err)
        headers = {
            **_CORS,
            "content-length": str(download.size),
            "content-disposition": disposition(download.content_type, download.filename),
            "content-security-policy": FILE_CSP,
            "x-content-type-options": "nosniff",
            "referrer-policy": "no-referrer",
            "cross-origin-resource-policy": "cross-origin",
        }
        if request.method == "HEAD":
            await download.chunks.aclose()
            return Response(headers=headers, media_type=download.content_type)
        try:
            first = await anext(download.chunks)  # a damaged file fails before the status is sent
        except EncryptionError as exc:
            await download.chunks.aclose()
            log.error("shared file does not decrypt (%s): not served", exc.code)
            return problem(500, "damaged", "the file cannot be read", headers=_CORS)
        except FileNotFoundError:  # swept between the look-up and the read
            return problem(404, "not-found", "no such file", headers=_CORS)
        return StreamingResponse(
            _prepend(first, download.chunks), headers=headers, media_type=download.content_type
        )

    async def options(_request: Request) -> Response:
        return Response(status_code=204, headers=_CORS)

    async def dispatch(request: Request) -> Response:
        if request.method == "PUT":
            return await put(request)
        if request.method in ("GET", "HEAD"):
            return await get(request)
        if request.method == "OPTIONS":
            return await options(request)
        return problem(405, "method-not-allowed", "use PUT, GET or HEAD", headers=_CORS)

    methods = ["GET", "HEAD", "PUT", "OPTIONS", "POST", "DELETE", "PATCH"]
    return Starlette(routes=[Route("/upload/{token}/{filename}", dispatch, methods=methods)])


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for chunk in rest:
        yield chunk

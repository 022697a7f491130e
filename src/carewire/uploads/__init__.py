"""File sharing (XEP-0363 HTTP File Upload): slots, encrypted files at rest, expiry.

The service layer between the XMPP feature (:mod:`carewire.features.upload`,
which hands out slots), the HTTPS routes (:mod:`carewire.web.upload`, which
receive and serve the files) and storage (:mod:`carewire.storage.uploads`,
the metadata). See ``docs/upload.md``.
"""

from __future__ import annotations

from carewire.uploads.model import (
    Download,
    Slot,
    UploadError,
    UploadRecord,
    UploadSettings,
    UploadState,
    UploadStore,
)
from carewire.uploads.service import UploadService

__all__ = [
    "Download",
    "Slot",
    "UploadError",
    "UploadRecord",
    "UploadService",
    "UploadSettings",
    "UploadState",
    "UploadStore",
]

"""Certificates, at-rest encryption and the audit trail."""

from __future__ import annotations

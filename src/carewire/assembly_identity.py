"""The composition root's part for identity integrations: LDAP sync and sign-in (docs/ldap.md).

Kept beside :mod:`carewire.assembly`, which calls :func:`ldap_service` once
the directory is built; the server runs :func:`ldap_jobs` (the status check
every ``status_interval``, the scheduled runs every ``interval``).
"""

from __future__ import annotations

from typing import Protocol

from carewire.clock import Clock
from carewire.config import Config, parse_duration
from carewire.core.feature import PeriodicJob
from carewire.directory.service import DirectoryService
from carewire.identity.ldap.console import LdapConsolePasswords
from carewire.identity.ldap.service import LdapService, SyncConfig
from carewire.security.audit import AuditTrail
from carewire.security.envelope import Keyring
from carewire.storage.database import Database
from carewire.storage.ldap_sync import SqlLdapStore


class SyncOptions(Protocol):
    """What the assembly's options give the LDAP service."""

    @property
    def clock(self) -> Clock:
        """The clock every service reads."""

    @property
    def directory_sync(self) -> SyncConfig:
        """``[directory_sync]``."""


__all__ = [
    "LdapConsolePasswords",
    "LdapService",
    "SyncConfig",
    "ldap_jobs",
    "ldap_service",
    "sync_config",
]


def sync_config(cfg: Config) -> SyncConfig:
    """The ``[directory_sync]`` section, parsed."""
    d = cfg.directory_sync

    def seconds(key: str) -> float:
        return parse_duration(getattr(d, key), f"directory_sync.{key}").total_seconds()

    return SyncConfig(
        status_interval=seconds("status_interval"),
        interval=seconds("interval"),
        full_interval=seconds("full_interval"),
        timeout=seconds("timeout"),
        keep_runs=d.keep_runs,
    )


def ldap_service(
    db: Database,
    keyring: Keyring,
    *,
    directory: DirectoryService,
    audit: AuditTrail,
    options: SyncOptions,
) -> LdapService:
    """The LDAP service on the one database; the directory asks it which fields are synced."""
    service = LdapService(
        store=SqlLdapStore(db, keyring),
        directory=directory,
        audit=audit,
        clock=options.clock,
        config=options.directory_sync,
    )
    directory.manage_fields(service.managed_fields)
    return service


def ldap_jobs(service: LdapService) -> list[PeriodicJob]:
    """The status check and the scheduled runs, as the server's periodic jobs."""
    return [
        PeriodicJob("ldap-status", service.config.status_interval, service.check_all),
        PeriodicJob("ldap-sync", service.config.interval, service.scheduled),
    ]

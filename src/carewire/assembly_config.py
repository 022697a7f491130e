"""The services' views of the configuration: ``Config`` sections turned into their settings.

Kept apart from :mod:`carewire.assembly` (within its size bound); the assembly
re-exports them, and ``options_from_config`` is their caller.
"""

from __future__ import annotations

import zoneinfo

from carewire.config import Config, parse_duration
from carewire.core.feature import FeatureConfig
from carewire.directory.model import DirectoryConfig
from carewire.rules.engine import EngineConfig
from carewire.uploads import UploadSettings

__all__ = ["directory_config", "engine_config", "feature_config", "upload_settings"]


def upload_settings(cfg: Config) -> UploadSettings | None:
    """File sharing's view of the configuration (``[upload]``; None when it is off)."""
    u = cfg.upload
    if not u.enabled:
        return None
    return UploadSettings(
        directory=cfg.data_dir / "uploads",
        max_file_size=u.max_file_size,
        quota=u.quota,
        slot_lifetime=parse_duration(u.slot_lifetime, "upload.slot_lifetime"),
        public_url=u.public_url,
    )


def feature_config(cfg: Config) -> FeatureConfig:
    """The features' view of the configuration (``[xmpp]``)."""
    from carewire import __version__

    x = cfg.xmpp
    return FeatureConfig(
        offline_ttl=parse_duration(x.offline_message_timeout, "xmpp.offline_message_timeout"),
        offline_max_per_user=x.offline_max_per_user,
        register_enabled=x.register_enabled,
        register_limit=x.register_limit,
        register_window=parse_duration(x.register_window, "xmpp.register_window").total_seconds(),
        version_visible=x.version_visible,
        server_version=__version__,
        ping_interval=parse_duration(x.ping_interval, "xmpp.ping_interval").total_seconds(),
        ping_timeout=parse_duration(x.ping_timeout, "xmpp.ping_timeout").total_seconds(),
        account_check_interval=parse_duration(
            x.account_check_interval, "xmpp.account_check_interval"
        ).total_seconds(),
        smacks_resume_timeout=parse_duration(
            x.smacks_resume_timeout, "xmpp.smacks_resume_timeout"
        ).total_seconds(),
        smacks_max_unacked=x.smacks_max_unacked,
        csi_max_held=x.csi_max_held,
        expiry_check_interval=parse_duration(
            x.expiry_check_interval, "xmpp.expiry_check_interval"
        ).total_seconds(),
        contact_addresses=cfg.contact.addresses(),
        pep_item_max_bytes=cfg.pep.item_max_bytes,
        pep_avatar_max_bytes=cfg.pep.avatar_max_bytes,
        pep_max_items=cfg.pep.max_items,
        pep_max_nodes=cfg.pep.max_nodes,
        e2e_encryption=cfg.pep.e2e_encryption,
        e2e_reason=cfg.pep.e2e_reason,
        sasl2_enabled=x.sasl2_enabled,
        fast_token_lifetime=parse_duration(x.fast_token_lifetime, "xmpp.fast_token_lifetime"),
        fast_rotate_after=parse_duration(x.fast_rotate_after, "xmpp.fast_rotate_after"),
        fast_require_pin=x.fast_require_pin,
    )


def engine_config(cfg: Config, *, hand_over: frozenset[str] = frozenset()) -> EngineConfig:
    """The rules engine's view of the configuration (``[rules]``)."""
    r = cfg.rules
    return EngineConfig(
        max_depth=r.max_depth,
        action_timeout=parse_duration(r.action_timeout, "rules.action_timeout").total_seconds(),
        tz=zoneinfo.ZoneInfo(r.time_zone),
        hand_over=hand_over,
    )


def directory_config(cfg: Config) -> DirectoryConfig:
    """The directory's view of the configuration (``[directory]``; links as the console's)."""
    d = cfg.directory
    port = cfg.server.https_port
    return DirectoryConfig(
        domain=cfg.server.domain,
        link_base=f"https://{cfg.server.domain}" + ("" if port == 443 else f":{port}"),
        invitation_link_ttl=parse_duration(d.invitation_link_ttl, "directory.invitation_link_ttl"),
        affiliation_link_ttl=parse_duration(
            d.affiliation_link_ttl, "directory.affiliation_link_ttl"
        ),
        pin_reset_link_ttl=parse_duration(d.pin_reset_link_ttl, "directory.pin_reset_link_ttl"),
        index_reload_interval=parse_duration(
            cfg.xmpp.account_check_interval, "xmpp.account_check_interval"
        ),
    )

"""``[push]`` in carewire.toml: what the app server gets, and every refused setting."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from carewire import config
from carewire.errors import ConfigError
from carewire.push.settings import APNS_CERTIFICATE_DIR, VAPID_KEY_FILE, settings_from_config


def load(tmp_path: Path, **push: object) -> config.Config:
    return config.load(tmp_path, env={}, overrides={"push": dict(push)})


def test_off_by_default(tmp_path: Path) -> None:
    assert settings_from_config(load(tmp_path)) is None


def test_apns_and_fcm(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        enabled=True,
        apns=True,
        apns_topic="org.x",
        fcm=True,
        fcm_service_account="sa.json",
        timeout="2s",
        retry_cap="1m",
    )
    s = settings_from_config(cfg)
    assert s is not None and s.apns is not None and s.fcm is not None
    assert s.apns.certificate_dir == cfg.data_dir / APNS_CERTIFICATE_DIR
    assert s.apns.auth == "certificate" and s.apns.certificate_slot == "next-gen"
    assert s.fcm.service_account_file == cfg.data_dir / "sa.json"
    assert (s.timeout, s.retry_cap, s.max_attempts, s.ttl) == (2.0, 60.0, 5, 86_400)


@pytest.mark.parametrize(
    ("push", "message"),
    [
        ({"enabled": True}, "push.enabled: enable push.apns, push.fcm, push.webpush or several"),
        ({"enabled": True, "apns": True}, "push.apns_topic: the app's bundle id is required"),
        ({"enabled": True, "apns": True, "apns_topic": "t", "apns_auth": "x"}, "push.apns_auth"),
        (
            {"enabled": True, "apns": True, "apns_topic": "t", "apns_urgent_level": "loud"},
            "push.apns_urgent_level",
        ),
        (
            {"enabled": True, "apns": True, "apns_topic": "t", "apns_certificate": "old"},
            "push.apns_certificate",
        ),
        ({"enabled": True, "fcm": True}, "push.fcm_service_account"),
        (
            {"enabled": True, "fcm": True, "fcm_service_account": "a", "max_attempts": 0},
            "push.max_attempts",
        ),
        (
            {"enabled": True, "fcm": True, "fcm_service_account": "a", "workers": 1000},
            "push.workers",
        ),
        (
            {"enabled": True, "fcm": True, "fcm_service_account": "a", "timeout": "soon"},
            "push.timeout",
        ),
    ],
)
def test_refused(tmp_path: Path, push: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        settings_from_config(load(tmp_path, **push))


def test_unknown_key_and_wrong_type(tmp_path: Path) -> None:
    (tmp_path / config.CONFIG_FILE).write_text("[push]\ngcm = true\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"push\.gcm: unknown key"):
        config.load(tmp_path, env={})
    (tmp_path / config.CONFIG_FILE).write_text("[push]\nenabled = 'yes'\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"push\.enabled: expected true or false"):
        config.load(tmp_path, env={})


def test_web_push(tmp_path: Path) -> None:
    cfg = load(
        tmp_path,
        enabled=True,
        webpush=True,
        webpush_hosts=["fcm.googleapis.com", "*.push.services.mozilla.com"],
    )
    s = settings_from_config(cfg)
    assert s is not None and s.webpush is not None and s.apns is None and s.fcm is None
    assert s.webpush.key_file == cfg.data_dir / VAPID_KEY_FILE
    assert s.webpush.subject == f"mailto:admin@{cfg.server.domain}"
    assert s.webpush.hosts == ("fcm.googleapis.com", "*.push.services.mozilla.com")
    assert s.webpush.allow_loopback is False


def test_web_push_from_the_environment(tmp_path: Path) -> None:
    env = {
        "CAREWIRE_PUSH_ENABLED": "true",
        "CAREWIRE_PUSH_WEBPUSH": "true",
        "CAREWIRE_PUSH_WEBPUSH_ALLOW_LOOPBACK": "true",
        "CAREWIRE_PUSH_WEBPUSH_SUBJECT": "https://hospital.example/contact",
    }
    s = settings_from_config(config.load(tmp_path, env=env))
    assert s is not None and s.webpush is not None
    assert s.webpush.allow_loopback and s.webpush.subject == "https://hospital.example/contact"


def test_web_push_subject_must_be_a_contact(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=re.escape("push.webpush_subject: a mailto: or https://")):
        settings_from_config(load(tmp_path, enabled=True, webpush=True, webpush_subject="ops"))

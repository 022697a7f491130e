"""The ``[upload]`` section (carewire.config_upload), loaded through carewire.config."""

from __future__ import annotations

from pathlib import Path

import pytest

from carewire.assembly_config import upload_settings
from carewire.config import load
from carewire.errors import ConfigError


def test_defaults_and_environment(tmp_path: Path) -> None:
    cfg = load(tmp_path, env={"CAREWIRE_UPLOAD_MAX_FILE_SIZE": "1000"})
    assert (cfg.upload.max_file_size, cfg.upload.quota) == (1000, 1_073_741_824)
    settings = upload_settings(cfg)
    assert settings is not None and settings.directory == tmp_path.resolve() / "uploads"
    assert settings.slot_lifetime.total_seconds() == 300
    off = load(tmp_path, env={"CAREWIRE_UPLOAD_ENABLED": "false"})
    assert upload_settings(off) is None


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"max_file_size": 0}, "upload.max_file_size: must be between 1 byte and 1 TiB, got 0"),
        ({"quota": 10, "max_file_size": 11}, "upload.quota: must be at least upload.max_file_size"),
        ({"slot_lifetime": "5s"}, "upload.slot_lifetime: must be between 10s and 1h, got '5s'"),
        ({"slot_lifetime": "soon"}, "upload.slot_lifetime: expected a duration"),
        ({"body_timeout": "0s"}, "upload.body_timeout: must be between 1s and 24h, got '0s'"),
        ({"body_timeout": "2d"}, "upload.body_timeout: must be between 1s and 24h, got '2d'"),
        ({"public_url": "http://files.example"}, "upload.public_url: expected an https:// URL"),
        ({"public_url": "https://a/b?c"}, "upload.public_url: expected an https:// URL"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, values: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("?", r"\?")):
        load(tmp_path, env={}, overrides={"upload": values})

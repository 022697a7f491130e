"""The kernel: feature loading (order, old names, unknown names) and services by interface."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol
from xml.etree.ElementTree import Element

import pytest

from carewire import storage
from carewire.core.feature import StreamPhase
from carewire.core.kernel import (
    CLINICAL_FEATURES,
    DEFAULT_FEATURES,
    IM_FEATURES,
    RENAMED_FEATURES,
    Kernel,
)
from carewire.errors import ConfigError
from carewire.security.envelope import ephemeral_keyring
from carewire.storage import migrate
from tests.templates import prefill

DOMAIN = "example.test"


@pytest.fixture
async def kernel(tmp_path: Path) -> AsyncIterator[Kernel]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'k.db'}"
    await migrate.upgrade(await prefill(url))
    db = await storage.Database.open(url)
    try:
        yield Kernel(domain=DOMAIN, stores=storage.build_stores(db, ephemeral_keyring()))
    finally:
        await db.close()


class Greeter(Protocol):
    def greet(self) -> str: ...


class English:
    def greet(self) -> str:
        return "hello"


def test_the_feature_lists_partition_the_defaults() -> None:
    assert DEFAULT_FEATURES == IM_FEATURES + CLINICAL_FEATURES
    assert len(set(DEFAULT_FEATURES)) == len(DEFAULT_FEATURES)
    assert set(RENAMED_FEATURES.values()) <= set(DEFAULT_FEATURES)


def test_features_load_in_the_canonical_order_whatever_is_asked(kernel: Kernel) -> None:
    kernel.load_features(["version", "ping", "message", "ping"])
    assert kernel.features == ["message", "ping", "version"]


def test_old_feature_names_load_the_new_feature_once(
    kernel: Kernel, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.WARNING, logger="carewire.core.kernel"),
        pytest.raises(ConfigError, match="feature 'alerting' needs"),
    ):
        kernel.load_features(["alerts", "chat_gateway"])
    assert "feature 'alerts' is now called 'alerting'" in caplog.text
    assert "feature 'chat_gateway' is now called 'alerting'" in caplog.text


def test_an_unknown_feature_is_a_config_error(kernel: Kernel) -> None:
    with pytest.raises(ConfigError, match="unknown feature 'telepathy'"):
        kernel.load_features(["message", "telepathy"])
    assert kernel.features == ["message"]


def test_a_clinical_feature_without_its_services_fails_at_start_up(kernel: Kernel) -> None:
    with pytest.raises(ConfigError, match="feature 'tracking' needs DatasetService"):
        kernel.load_features(["message", "tracking"])
    assert kernel.ctx.loading == ""  # the error does not leave the context mid-load


def test_an_im_feature_needs_the_chat_settings_source(kernel: Kernel) -> None:
    with pytest.raises(ConfigError, match="feature 'disco' needs ChatSettingsSource"):
        kernel.load_features(["disco"])


def test_services_are_provided_and_required_by_interface(kernel: Kernel) -> None:
    ctx = kernel.ctx
    assert ctx.find(Greeter) is None
    with pytest.raises(ConfigError, match="a feature needs Greeter"):
        ctx.require(Greeter)
    english = ctx.provide(English(), as_type=Greeter)
    assert ctx.require(Greeter) is english
    assert ctx.find(English) is None  # keyed by the interface only
    assert ctx.provide(English()) is ctx.require(English)


def test_stream_features_are_built_per_phase(kernel: Kernel) -> None:
    kernel.ctx.add_stream_feature(StreamPhase.POST_AUTH, lambda: Element("{urn:x}later"))
    assert kernel.stream_features(StreamPhase.PRE_AUTH) == ()
    (built,) = kernel.stream_features(StreamPhase.POST_AUTH)
    assert built.tag == "{urn:x}later"

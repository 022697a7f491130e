"""The version: one semantic version, in ``carewire.__version__``, in the changelog."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

import carewire
from carewire.cli import main

ROOT = Path(__file__).resolve().parent.parent
#: Semantic Versioning 2.0.0, without build metadata.
SEMVER = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?")


def test_the_version_is_semantic() -> None:
    assert SEMVER.fullmatch(carewire.__version__)


def test_the_package_metadata_reads_the_version_from_the_code() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"]
    assert project["project"]["dynamic"] == ["version"]
    dynamic = project["tool"]["setuptools"]["dynamic"]
    assert dynamic["version"] == {"attr": "carewire.__version__"}


def test_the_changelog_has_the_version_and_an_unreleased_section() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?$", text, re.M)
    assert headings[0] == ("Unreleased", "")
    released = [version for version, _ in headings[1:]]
    assert carewire.__version__ in released
    assert all(SEMVER.fullmatch(v) for v in released)
    assert all(date for _, date in headings[1:])


def test_carewire_version_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"carewire {carewire.__version__}"

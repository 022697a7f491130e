"""Placeholder: being written (see the feature's own docstring once it lands)."""

from __future__ import annotations

from carewire.core.feature import FeatureContext


def setup(ctx: FeatureContext) -> None:
    """Nothing registered yet."""

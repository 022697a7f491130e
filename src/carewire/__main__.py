"""Allow ``python -m carewire``."""

from __future__ import annotations

from carewire.cli import main

raise SystemExit(main())

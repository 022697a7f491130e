"""Where an installation's configuration file and data directory are.

Two layouts are supported:

- **Self-contained** (``make run``, tests, a container's volume): the data
  directory holds its own ``carewire.toml``. Found by ``--data-dir``, else
  ``$CAREWIRE_DATA_DIR``, else ``./data``.
- **Packaged** (a server with systemd, docs/install.md): the configuration is a
  file of its own, e.g. ``/etc/carewire/carewire.toml``, named by ``--config``
  or ``$CAREWIRE_CONFIG``; its top-level key ``data_dir`` names the data
  directory (``/var/lib/carewire``) unless ``--data-dir`` or
  ``$CAREWIRE_DATA_DIR`` say otherwise. When nothing is named and there is no
  ``./data/carewire.toml``, ``/etc/carewire/carewire.toml`` is used if it exists,
  so that an operator's ``sudo -u carewire carewire user list`` finds the server's
  installation.

The command line wins over the environment, which wins over the file.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from carewire.errors import ConfigError

#: The configuration file's name inside a self-contained data directory.
CONFIG_FILE = "carewire.toml"
#: Names a configuration file kept outside the data directory (``--config``).
CONFIG_ENV = "CAREWIRE_CONFIG"
#: Names the data directory (``--data-dir``).
DATA_DIR_ENV = "CAREWIRE_DATA_DIR"
#: The top-level key of a configuration file kept outside the data directory.
DATA_DIR_KEY = "data_dir"
#: The packaged layout's configuration file, used when nothing else is named.
SYSTEM_CONFIG = Path("/etc/carewire/carewire.toml")
#: The data directory when nothing is named (relative to the working directory).
DEFAULT_DATA_DIR = Path("data")


@dataclass(frozen=True, slots=True, kw_only=True)
class Location:
    """An installation's configuration file and data directory."""

    config_file: Path
    data_dir: Path
    is_external: bool  # the configuration file lives outside the data directory


def read_table(path: Path) -> dict[str, Any]:
    """The TOML document at ``path`` ({} when there is no such file).

    Raises:
        ConfigError: The file is not valid TOML or cannot be read.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def data_dir_named_in(path: Path) -> Path | None:
    """The ``data_dir`` a configuration file names (relative to the file's directory).

    Raises:
        ConfigError: The key is there but is not a non-empty string, or the file is invalid.
    """
    value = read_table(path).get(DATA_DIR_KEY)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{DATA_DIR_KEY}: expected a directory path, got {value!r} in {path}")
    return path.parent / Path(value).expanduser()


def locate(
    *,
    config: str | None,
    data_dir: str | None,
    env: Mapping[str, str],
    system_config: Path = SYSTEM_CONFIG,
) -> Location:
    """The configuration file and data directory the options and environment name.

    Args:
        config: ``--config``, if given.
        data_dir: ``--data-dir``, if given.
        env: The environment (``CAREWIRE_CONFIG``, ``CAREWIRE_DATA_DIR``).
        system_config: The configuration file used when nothing is named and there is
            no ``./data/carewire.toml``, if it exists.

    Raises:
        ConfigError: A configuration file is named but names no data directory and
            none is given.
    """
    named = config or env.get(CONFIG_ENV) or ""
    given = data_dir or env.get(DATA_DIR_ENV) or ""
    if not named and not given:
        is_local = (DEFAULT_DATA_DIR / CONFIG_FILE).exists()
        named = str(system_config) if not is_local and system_config.is_file() else ""
    if not named:
        where = Path(given) if given else DEFAULT_DATA_DIR
        return Location(config_file=where / CONFIG_FILE, data_dir=where, is_external=False)
    config_file = Path(named).expanduser()
    if given:
        where = Path(given).expanduser()
    else:
        found = data_dir_named_in(config_file)
        if found is None and not config_file.exists():
            raise ConfigError(
                f"{config_file} not found: write it (with '{DATA_DIR_KEY} = \"/var/lib/carewire\"'"
                f" at its top) or run 'carewire init --config {config_file} --data-dir DIR"
                " --domain DOMAIN'"
            )
        if found is None:
            raise ConfigError(
                f"{config_file} names no data directory: add "
                f"'{DATA_DIR_KEY} = \"/var/lib/carewire\"' at its top, "
                f"or give --data-dir (or ${DATA_DIR_ENV})"
            )
        where = found
    # A --config naming the data directory's own file is the self-contained layout.
    is_external = config_file.resolve() != (where / CONFIG_FILE).resolve()
    return Location(config_file=config_file, data_dir=where, is_external=is_external)

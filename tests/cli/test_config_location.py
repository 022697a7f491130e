"""The packaged layout: ``/etc/carewire/carewire.toml`` naming ``/var/lib/carewire``.

Temporary directories stand in for ``/etc/carewire`` and ``/var/lib``; the
commands run in this process (``tests/test_packaging.py`` serves this layout
from an installed wheel).
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from carewire.config import load
from carewire.config_location import locate
from carewire.errors import ConfigError
from tests.cli.conftest import Run


@pytest.fixture
def etc(tmp_path: Path) -> Path:
    """Stands in for /etc/carewire/carewire.toml."""
    return tmp_path / "etc" / "carewire" / "carewire.toml"


@pytest.fixture
def var_lib(tmp_path: Path) -> Path:
    """Stands in for /var/lib (the data directory and its -keys and -audit siblings)."""
    (tmp_path / "var" / "lib").mkdir(parents=True)
    return tmp_path / "var" / "lib"


def test_without_config_the_data_directory_holds_its_own_file() -> None:
    at = locate(config=None, data_dir=None, env={})
    assert at.data_dir == Path("data") and at.config_file == Path("data/carewire.toml")
    assert not at.is_external
    at = locate(config=None, data_dir=None, env={"CAREWIRE_DATA_DIR": "/srv/cw"})
    assert at.config_file == Path("/srv/cw/carewire.toml")


def test_the_system_file_is_used_when_nothing_is_named_and_there_is_no_local_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    system = tmp_path / "etc" / "carewire.toml"
    system.parent.mkdir()
    system.write_text('data_dir = "/srv/carewire"\n')
    monkeypatch.chdir(tmp_path)
    at = locate(config=None, data_dir=None, env={}, system_config=system)
    assert (at.config_file, at.data_dir, at.is_external) == (system, Path("/srv/carewire"), True)
    # ./data of a development checkout, or anything named, wins over it.
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "carewire.toml").write_text("")
    assert not locate(config=None, data_dir=None, env={}, system_config=system).is_external
    at = locate(config=None, data_dir="elsewhere", env={}, system_config=system)
    assert at.data_dir == Path("elsewhere") and not at.is_external
    at = locate(config=None, data_dir=None, env={}, system_config=tmp_path / "missing.toml")
    assert at.data_dir == Path("data")


def test_the_command_line_wins_over_the_environment_which_wins_over_the_file(
    tmp_path: Path,
) -> None:
    conf = tmp_path / "carewire.toml"
    conf.write_text('data_dir = "from-file"\n')
    env = {"CAREWIRE_CONFIG": str(conf)}
    assert locate(config=None, data_dir=None, env=env).data_dir == tmp_path / "from-file"
    env["CAREWIRE_DATA_DIR"] = "/from/env"
    assert locate(config=None, data_dir=None, env=env).data_dir == Path("/from/env")
    at = locate(config=str(conf), data_dir="/from/flag", env=env)
    assert at.data_dir == Path("/from/flag") and at.config_file == conf and at.is_external


def test_a_config_file_that_names_no_data_directory_is_refused(tmp_path: Path) -> None:
    conf = tmp_path / "carewire.toml"
    conf.write_text('[server]\ndomain = "h.example"\n')
    with pytest.raises(ConfigError, match=r"names no data directory.*--data-dir"):
        locate(config=str(conf), data_dir=None, env={})
    conf.write_text("data_dir = 5\n")
    with pytest.raises(ConfigError, match=r"data_dir: expected a directory path, got 5"):
        locate(config=str(conf), data_dir=None, env={})
    conf.write_text("data_dir = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        locate(config=str(conf), data_dir=None, env={})


def test_a_missing_config_file_says_how_to_make_it(tmp_path: Path) -> None:
    missing = tmp_path / "carewire.toml"
    with pytest.raises(ConfigError, match=r"carewire.toml not found: write it .* or run 'carewire"):
        locate(config=None, data_dir=None, env={"CAREWIRE_CONFIG": str(missing)})


def test_config_naming_the_data_directorys_own_file_is_the_self_contained_layout(
    tmp_path: Path,
) -> None:
    at = locate(config=str(tmp_path / "carewire.toml"), data_dir=str(tmp_path), env={})
    assert not at.is_external


def test_init_writes_the_file_naming_the_data_directory(
    run: Run, etc: Path, var_lib: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = var_lib / "carewire"
    code, out, err = run(
        "init", "--config", str(etc), "--data-dir", str(data), "--domain", "h.example"
    )
    assert code == 0, err
    assert f"configuration  {etc}" in out and f"--config {etc}" in out
    assert not (data / "carewire.toml").exists()  # the one configuration is in "/etc"
    assert (data / "carewire.db").exists() and (data / "certs/xmpp.pem").exists()
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert (var_lib / "carewire-keys" / "kek").exists()  # beside, not inside, the data
    assert load(data, config_file=etc, env={}).server.domain == "h.example"
    # Every command then finds the installation from $CAREWIRE_CONFIG alone.
    monkeypatch.setenv("CAREWIRE_CONFIG", str(etc))
    code, out, err = run("user", "list")
    assert code == 0, err
    assert "admin@h.example" in out
    code, _, err = run("init", "--domain", "h.example")
    assert code == 2 and "already initialised (keys/server.secret exists)" in err


def test_init_uses_the_file_an_operator_wrote_first(run: Run, etc: Path, var_lib: Path) -> None:
    etc.parent.mkdir(parents=True)
    data = var_lib / "carewire"
    etc.write_text(
        f'data_dir = "{data}"\n[server]\ndomain = "chat.hospital.example"\nhttps_port = 9443\n'
    )
    code, out, err = run("init", "--config", str(etc))
    assert code == 0, err
    assert "https://chat.hospital.example:9443/" in out
    assert "https_port = 9443" in etc.read_text()  # left as the operator wrote it


def test_init_refuses_a_domain_other_than_the_files(run: Run, etc: Path, var_lib: Path) -> None:
    etc.parent.mkdir(parents=True)
    etc.write_text(f'data_dir = "{var_lib / "carewire"}"\n[server]\ndomain = "a.example"\n')
    code, _, err = run("init", "--config", str(etc), "--domain", "b.example")
    assert code == 2
    assert "--domain b.example differs from server.domain 'a.example'" in err


def test_init_needs_a_domain_to_write_a_new_file(run: Run, etc: Path, var_lib: Path) -> None:
    code, _, err = run("init", "--config", str(etc), "--data-dir", str(var_lib / "carewire"))
    assert code == 2 and "does not exist: give --domain to write it" in err
    code, _, err = run("init", "--data-dir", str(var_lib / "self-contained"))
    assert code == 2 and "--domain is required" in err


def test_init_says_when_the_file_cannot_be_written(run: Run, tmp_path: Path, var_lib: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    etc = blocker / "carewire.toml"
    code, _, err = run(
        "init", "--config", str(etc), "--data-dir", str(var_lib / "d"), "--domain", "h.example"
    )
    assert code == 2 and f"{etc}: cannot be written" in err


def test_commands_say_how_to_initialise_a_missing_installation(
    run: Run, etc: Path, var_lib: Path
) -> None:
    data = var_lib / "carewire"
    code, _, err = run("user", "list", "--config", str(etc), "--data-dir", str(data))
    assert code == 2
    assert f"{etc} not found: run 'carewire init --config {etc} --data-dir {data}" in err
    etc.parent.mkdir(parents=True)
    etc.write_text(f'data_dir = "{data}"\n[server]\ndomain = "h.example"\n')
    code, _, err = run("user", "list", "--config", str(etc))
    assert code == 2 and f"{data} (the data directory {etc} names) does not exist" in err


def test_an_init_that_failed_on_the_database_can_be_run_again(
    run: Run, etc: Path, var_lib: Path, tmp_path: Path
) -> None:
    etc.parent.mkdir(parents=True)
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    data = var_lib / "carewire"
    unreachable = f"sqlite:///{blocker}/carewire.db"  # its directory cannot be made
    etc.write_text(f'data_dir = "{data}"\n[server]\ndomain = "h.example"\n[storage]\n')
    with etc.open("a") as f:
        f.write(f'url = "{unreachable}"\n')
    with pytest.raises(OSError):
        run("init", "--config", str(etc))
    assert not (data / "keys" / "server.secret").exists()
    etc.write_text(etc.read_text().replace(unreachable, "sqlite:///carewire.db"))
    code, out, err = run("init", "--config", str(etc))
    assert code == 0, err
    assert "administrator  admin@h.example" in out

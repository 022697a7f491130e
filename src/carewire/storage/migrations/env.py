"""Alembic environment for Carewire's schema.

Migrations run through :mod:`carewire.storage.migrate`, which hands over an
open connection in ``config.attributes["connection"]``; no ``alembic.ini``
is needed. Offline mode (``--sql``) renders SQL for the configured
``sqlalchemy.url``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from carewire.storage.tables import metadata


def _run_online(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds tables instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        # carewire.storage.migrate wraps the run in one transaction, and with
        # SQLAlchemy emitting BEGIN, SQLite's DDL is transactional too.
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_offline(url: str) -> None:
    context.configure(
        url=url,
        target_metadata=metadata,
        literal_binds=True,
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    """Run the migrations Alembic was asked for."""
    config = context.config
    connection = config.attributes.get("connection")
    if isinstance(connection, Connection):
        _run_online(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if context.is_offline_mode() and url:
        _run_offline(url)
        return
    raise RuntimeError("run migrations through carewire.storage.migrate")


main()

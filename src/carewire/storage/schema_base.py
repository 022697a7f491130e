"""The schema's shared parts: :data:`metadata`, its naming convention and common columns."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Integer, MetaData, String

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

LOGIN_LENGTH = 1023  # RFC 7622 localpart
JID_LENGTH = 3071  # RFC 7622 full JID


def owner_column(*, primary_key: bool = False, index: bool = False) -> Column[str]:
    return Column(
        "owner",
        String(LOGIN_LENGTH),
        ForeignKey("accounts.login", ondelete="CASCADE"),
        primary_key=primary_key,
        nullable=False,
        index=index,
    )


# Integer primary keys that are rowid aliases on SQLite.
BIG_ID = BigInteger().with_variant(Integer(), "sqlite")

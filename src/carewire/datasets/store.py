"""What the dataset layer needs from storage, as protocols.

:mod:`carewire.storage.datasets` implements them on SQLite and PostgreSQL.
Values passed in and out are already typed (``datetime`` for Date/Time,
``date`` for Date, ``bool``, ``int``, ``str``); to-one links are record ids.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from carewire.datasets.model import Dataset, DatasetName, Link, Record, RecordId
from carewire.datasets.query import Page, Query


class RecordWriter(Protocol):
    """Statements inside one write transaction."""

    def after_commit(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` once the transaction committed."""

    async def get(self, ds: Dataset, record_id: RecordId) -> Record | None:
        """A record as this transaction sees it."""

    async def find_by_key(self, ds: Dataset, key: Mapping[str, object]) -> Record | None:
        """The record whose key fields equal ``key``."""

    async def insert(self, ds: Dataset, values: Mapping[str, object]) -> RecordId:
        """Insert a record (attributes and to-one links); returns its id."""

    async def update(self, ds: Dataset, record_id: RecordId, values: Mapping[str, object]) -> None:
        """Change some attributes and to-one links of a record."""

    async def delete(self, ds: Dataset, record_id: RecordId) -> None:
        """Delete a record and its m:n link rows."""

    async def linked_ids(self, ds: Dataset, link: Link, record_id: RecordId) -> list[RecordId]:
        """The records ``link`` reaches from one record."""

    async def add_links(
        self, ds: Dataset, link: Link, record_id: RecordId, targets: Sequence[RecordId]
    ) -> None:
        """Add m:n link rows (existing ones are left alone)."""

    async def remove_links(
        self, ds: Dataset, link: Link, record_id: RecordId, targets: Sequence[RecordId]
    ) -> None:
        """Remove m:n link rows."""

    async def missing(self, ds: Dataset, ids: Sequence[RecordId]) -> list[RecordId]:
        """Which of ``ids`` are not records of ``ds``."""

    async def get_many(self, ds: Dataset, ids: Sequence[RecordId]) -> dict[RecordId, Record]:
        """Records by id as this transaction sees them (missing ones are left out)."""

    async def find_many_by_key(
        self, ds: Dataset, keys: Sequence[Mapping[str, object]]
    ) -> list[Record]:
        """The records whose key fields equal one of ``keys`` (no key value may be None)."""

    async def insert_many(
        self, ds: Dataset, rows: Sequence[Mapping[str, object]]
    ) -> list[RecordId]:
        """Insert records (attributes and to-one links); their ids, in the order of ``rows``.

        A field missing from a row is stored as NULL.
        """

    async def update_many(
        self, ds: Dataset, changes: Sequence[tuple[RecordId, Mapping[str, object]]]
    ) -> None:
        """Change some attributes and to-one links of several records, in order."""

    async def insert_links(
        self, ds: Dataset, link: Link, pairs: Sequence[tuple[RecordId, RecordId]]
    ) -> None:
        """Add m:n link rows (record, target) of records that have none yet (just inserted)."""

    async def referrers(self, ds: Dataset, record_id: RecordId) -> list[tuple[str, int]]:
        """(``DATASET.link``, count) for each to-one link of another record pointing here."""


class RecordStore(Protocol):
    """Reads, and write transactions, on the dataset tables."""

    def write(self, name: str) -> AbstractAsyncContextManager[RecordWriter]:
        """Open a named write transaction."""

    async def get(self, ds: Dataset, record_id: RecordId) -> Record | None:
        """One record by id."""

    async def get_many(self, ds: Dataset, ids: Sequence[RecordId]) -> dict[RecordId, Record]:
        """Records by id (missing ones are left out)."""

    async def find_by_key(self, ds: Dataset, key: Mapping[str, object]) -> Record | None:
        """The record whose key fields equal ``key``."""

    async def follow(
        self, ds: Dataset, link: Link, ids: Sequence[RecordId]
    ) -> dict[RecordId, list[RecordId]]:
        """For each of ``ids``, the ids ``link`` reaches (in id order)."""

    async def query(self, ds: Dataset, query: Query) -> Page:
        """One page of matching records and the total count."""


class SchemaStore(Protocol):
    """Dataset definitions and the tables generated from them."""

    async def load_definitions(self) -> list[Dataset]:
        """The definitions saved in the database."""

    async def apply(self, datasets: Sequence[Dataset], changed: Sequence[DatasetName]) -> None:
        """Save ``changed`` definitions and create what is missing, in one transaction.

        ``datasets`` is the complete new set (foreign keys need every table).

        Raises:
            DefinitionError: An existing column's type differs from its definition.
        """

    async def count(self, ds: Dataset) -> int:
        """How many records ``ds`` holds (0 if its table does not exist yet)."""

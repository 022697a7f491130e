"""The live set of dataset definitions, and changes to it at run time.

At start, :meth:`Registry.load` merges the built-in definitions with those
saved in the database (an administrator's additions are kept; built-in
attributes and links new in this release are added) and has storage create
whatever tables and columns are missing. Administrators then create datasets
and add attributes and links; every change is validated against the whole
set, saved and applied in one transaction, and never drops anything.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

from carewire.datasets.definitions import (
    DefinitionError,
    builtin_datasets,
    dataset_problems,
    validate,
)
from carewire.datasets.model import Attribute, Dataset, DatasetName, Link
from carewire.datasets.store import SchemaStore
from carewire.errors import ConflictError, NotFoundError

log = logging.getLogger(__name__)


class UnknownDatasetError(NotFoundError):
    """No dataset has this name."""

    code = "unknown-dataset"


class Registry:
    """Every dataset definition, by name."""

    def __init__(self, store: SchemaStore) -> None:
        self._store = store
        self._datasets: dict[str, Dataset] = {}
        self._listeners: list[Callable[[], object]] = []

    def on_change(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` after every change to the definitions."""
        self._listeners.append(callback)

    async def load(self) -> None:
        """Merge built-in and saved definitions and create what is missing."""
        saved: dict[str, Dataset] = {ds.name: ds for ds in await self._store.load_definitions()}
        merged: dict[str, Dataset] = dict(saved)
        changed: list[DatasetName] = []
        for builtin in builtin_datasets():
            current = saved.get(builtin.name)
            new = builtin if current is None else _with_missing_fields(current, builtin)
            if new != current:
                merged[builtin.name] = new
                changed.append(builtin.name)
        validate(merged.values())
        await self._store.apply(list(merged.values()), changed)
        self._datasets = merged
        log.info("%d datasets loaded (%d definitions saved)", len(merged), len(changed))

    async def refresh(self) -> bool:
        """Take up definitions another process (the CLI) saved; True if any changed.

        The other process created the tables and columns already; this one only
        learns of them (and of their rows' shape).
        """
        merged: dict[str, Dataset] = dict(self._datasets)
        merged.update((ds.name, ds) for ds in await self._store.load_definitions())
        if merged == self._datasets:
            return False
        validate(merged.values())
        await self._store.apply(list(merged.values()), [])
        changed = sorted(n for n in merged if merged[n] != self._datasets.get(n))
        self._datasets = merged
        log.info("dataset definitions changed outside this process: %s", ", ".join(changed))
        for callback in self._listeners:
            callback()
        return True

    def get(self, name: str) -> Dataset:
        """The dataset called ``name``.

        Raises:
            UnknownDatasetError: There is none.
        """
        ds = self._datasets.get(name)
        if ds is None:
            raise UnknownDatasetError(f"unknown dataset {name!r}")
        return ds

    def __contains__(self, name: object) -> bool:
        return name in self._datasets

    def all(self) -> list[Dataset]:
        """Every dataset, by name."""
        return sorted(self._datasets.values(), key=lambda d: d.name)

    async def create_dataset(
        self,
        name: str,
        *,
        description: str = "",
        attributes: Sequence[Attribute] = (),
        links: Sequence[Link] = (),
    ) -> Dataset:
        """Create a dataset; each link's reverse is added to its target.

        Raises:
            ConflictError: A dataset of that name exists.
            DefinitionError: The definition is not valid (the message lists why).
        """
        if name in self._datasets:
            raise ConflictError(f"dataset {name} already exists")
        ds = Dataset(
            name=DatasetName(name),
            description=description,
            attributes=tuple(attributes),
            links=tuple(links),
        )
        problems = dataset_problems(ds)
        if problems:
            raise DefinitionError(problems)
        updates: dict[str, Dataset] = {ds.name: ds}
        for link in ds.links:
            updates[link.target] = _add_reverse(
                updates.get(link.target) or self._target(ds, link), ds, link
            )
        await self._apply(updates)
        return self._datasets[ds.name]

    async def add_attribute(self, name: str, attr: Attribute) -> Dataset:
        """Add an attribute to a dataset.

        Raises:
            UnknownDatasetError: No such dataset.
            DefinitionError: The name is taken or invalid, it is a key, or it
                is required while records exist (they would have no value).
        """
        ds = self.get(name)
        if attr.is_key:
            raise DefinitionError(
                [f"{name}.{attr.name}: a dataset's key is fixed when it is created"]
            )
        if attr.is_required and await self._store.count(ds) > 0:
            raise DefinitionError(
                [
                    f"{name}.{attr.name}: cannot add a required attribute while {name} has "
                    "records (they would have no value); add it as optional"
                ]
            )
        new = Dataset(
            name=ds.name,
            description=ds.description,
            attributes=(*ds.attributes, attr),
            links=ds.links,
            is_builtin=ds.is_builtin,
        )
        await self._apply({ds.name: new})
        return self._datasets[ds.name]

    async def set_phi(self, name: str, attribute: str, *, is_phi: bool) -> Dataset:
        """Mark an attribute as PHI or not; the store encrypts or decrypts its values.

        Every existing value is converted in the same transaction as the
        definition change (docs/phi.md), so the new flag holds for every
        record once this returns.

        Raises:
            UnknownDatasetError: No such dataset.
            DefinitionError: No such attribute, or a built-in PHI attribute
                would be unmarked (the built-in PHI set is a floor).
        """
        ds = self.get(name)
        attr = ds.attribute(attribute)
        if attr is None:
            raise DefinitionError([f"{name}.{attribute}: no such attribute"])
        if attr.is_phi == is_phi:
            return ds
        if not is_phi and _is_builtin_phi(ds.name, attr.name):
            raise DefinitionError(
                [f"{name}.{attribute}: a built-in PHI attribute stays marked as PHI"]
            )
        new = Dataset(
            name=ds.name,
            description=ds.description,
            attributes=tuple(replace(a, is_phi=is_phi) if a is attr else a for a in ds.attributes),
            links=ds.links,
            is_builtin=ds.is_builtin,
        )
        await self._apply({ds.name: new})
        return self._datasets[ds.name]

    async def add_link(self, name: str, link: Link) -> Dataset:
        """Add a link to a dataset and its reverse to the target.

        Raises:
            UnknownDatasetError: No such dataset.
            DefinitionError: The link or its reverse is not valid.
        """
        ds = self.get(name)
        _check_new_link(ds, link)
        new = Dataset(
            name=ds.name,
            description=ds.description,
            attributes=ds.attributes,
            links=(*ds.links, link),
            is_builtin=ds.is_builtin,
        )
        target = new if link.target == ds.name else self._target(ds, link)
        updates: dict[str, Dataset] = {ds.name: new}
        updates[link.target] = _add_reverse(updates.get(link.target) or target, new, link)
        await self._apply(updates)
        return self._datasets[ds.name]

    def _target(self, ds: Dataset, link: Link) -> Dataset:
        target = self._datasets.get(link.target)
        if target is None and link.target != ds.name:
            raise DefinitionError(
                [f"{ds.name}.{link.name}: links to unknown dataset {link.target}"]
            )
        return target or ds

    async def _apply(self, updates: dict[str, Dataset]) -> None:
        merged: dict[str, Dataset] = {**self._datasets, **updates}
        validate(merged.values())
        await self._store.apply(list(merged.values()), [DatasetName(n) for n in updates])
        self._datasets = merged
        log.info("dataset definitions changed: %s", ", ".join(sorted(updates)))
        for callback in self._listeners:
            callback()


def _check_new_link(ds: Dataset, link: Link) -> None:
    if link.is_key or link.is_reverse_key:
        raise DefinitionError(
            [f"{ds.name}.{link.name}: a dataset's key is fixed when it is created"]
        )


def _add_reverse(target: Dataset, source: Dataset, link: Link) -> Dataset:
    """``target`` with the reverse of ``link`` (from ``source``) added."""
    if target.link(link.reverse) is not None or target.attribute(link.reverse) is not None:
        raise DefinitionError(
            [f"{target.name}.{link.reverse}: the name is taken, choose another reverse name"]
        )
    reverse = Link(
        name=link.reverse,
        target=source.name,
        reverse=link.name,
        cardinality=link.cardinality.reverse,
        is_reverse_key=link.is_key,
    )
    return Dataset(
        name=target.name,
        description=target.description,
        attributes=target.attributes,
        links=(*target.links, reverse),
        is_builtin=target.is_builtin,
    )


def _with_missing_fields(saved: Dataset, builtin: Dataset) -> Dataset:
    """``saved`` plus the built-in attributes and links it lacks (a newer release's).

    A built-in attribute marked PHI is marked in ``saved`` too (an existing
    installation's values are then encrypted by the store at this start).
    """
    phi = {a.name for a in builtin.attributes if a.is_phi}
    marked = tuple(
        replace(a, is_phi=True) if a.name in phi and not a.is_phi else a for a in saved.attributes
    )
    attrs = [a for a in builtin.attributes if saved.attribute(a.name) is None]
    links = [ln for ln in builtin.links if saved.link(ln.name) is None]
    if not attrs and not links and marked == saved.attributes:
        return saved
    return Dataset(
        name=saved.name,
        description=saved.description,
        attributes=(*marked, *attrs),
        links=(*saved.links, *links),
        is_builtin=True,
    )


def _is_builtin_phi(dataset: str, attribute: str) -> bool:
    for builtin in builtin_datasets():
        if builtin.name == dataset:
            attr = builtin.attribute(attribute)
            return attr is not None and attr.is_phi
    return False


def names(datasets: Iterable[Dataset]) -> list[str]:
    """Dataset names, sorted."""
    return sorted(ds.name for ds in datasets)

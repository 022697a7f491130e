"""Dataset definitions as data: load the built-in ones, convert, and validate a set.

The built-in definitions live in ``builtin.yaml`` next to this module. A
set of definitions is valid when every name is well formed, every link's
target exists and carries the reverse link pointing back with the mirrored
cardinality and key flags, and key links are to-one. :func:`validate` lists
every problem at once, each naming its dataset and field.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import cast

import yaml

from carewire.datasets.model import (
    DATASET_NAME,
    FIELD_NAME,
    RESERVED_FIELDS,
    Attribute,
    AttrType,
    Cardinality,
    Dataset,
    DatasetName,
    Link,
)
from carewire.errors import ValidationError


class DefinitionError(ValidationError):
    """A dataset definition (or a set of them) is not valid.

    Attributes:
        problems: One line per problem, each naming the dataset and field.
    """

    code = "invalid-definition"

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(self.problems))


def dataset_from_dict(name: str, data: Mapping[str, object], *, is_builtin: bool) -> Dataset:
    """Build a :class:`Dataset` from its YAML/JSON form.

    Raises:
        DefinitionError: A field is missing or has the wrong type or value.
    """
    try:
        attributes = tuple(
            attribute_from_dict(cast(Mapping[str, object], a))
            for a in cast(list[object], data.get("attributes") or [])
        )
        links = tuple(
            link_from_dict(cast(Mapping[str, object], ln))
            for ln in cast(list[object], data.get("links") or [])
        )
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise DefinitionError([f"{name}: malformed definition ({exc})"]) from None
    return Dataset(
        name=DatasetName(name),
        description=str(data.get("description") or ""),
        attributes=attributes,
        links=links,
        is_builtin=is_builtin,
    )


def attribute_from_dict(data: Mapping[str, object]) -> Attribute:
    """An :class:`Attribute` from ``{"name", "type", "key"?, "required"?, "phi"?, "description"?}``.

    Raises:
        KeyError, ValueError: A field is missing or ``type`` is unknown.
    """
    return Attribute(
        name=str(data["name"]),
        type=AttrType(str(data["type"])),
        is_key=_flag(data, "key"),
        is_required=_flag(data, "required"),
        description=str(data.get("description") or ""),
        is_phi=_flag(data, "phi"),
    )


def link_from_dict(data: Mapping[str, object]) -> Link:
    """A :class:`Link` from ``{"name", "target", "reverse", "cardinality", …}``.

    Raises:
        KeyError, ValueError: A field is missing or ``cardinality`` is unknown.
    """
    return Link(
        name=str(data["name"]),
        target=DatasetName(str(data["target"])),
        reverse=str(data["reverse"]),
        cardinality=Cardinality(str(data["cardinality"])),
        is_key=_flag(data, "key"),
        is_reverse_key=_flag(data, "reverse_key"),
        description=str(data.get("description") or ""),
    )


def _flag(data: Mapping[str, object], name: str) -> bool:
    value = data.get(name, False)
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, not {value!r}")
    return value


def attribute_to_dict(attr: Attribute) -> dict[str, object]:
    """The YAML/JSON form of an attribute (defaults left out)."""
    out: dict[str, object] = {"name": attr.name, "type": attr.type.value}
    if attr.is_key:
        out["key"] = True
    if attr.is_required:
        out["required"] = True
    if attr.is_phi:
        out["phi"] = True
    if attr.description:
        out["description"] = attr.description
    return out


def link_to_dict(link: Link) -> dict[str, object]:
    """The YAML/JSON form of a link (defaults left out)."""
    out: dict[str, object] = {
        "name": link.name,
        "target": link.target,
        "reverse": link.reverse,
        "cardinality": link.cardinality.value,
    }
    if link.is_key:
        out["key"] = True
    if link.is_reverse_key:
        out["reverse_key"] = True
    if link.description:
        out["description"] = link.description
    return out


def dataset_to_dict(ds: Dataset) -> dict[str, object]:
    """The YAML/JSON form of a dataset (without its name)."""
    out: dict[str, object] = {"description": ds.description}
    if ds.attributes:
        out["attributes"] = [attribute_to_dict(a) for a in ds.attributes]
    if ds.links:
        out["links"] = [link_to_dict(ln) for ln in ds.links]
    return out


@functools.cache
def builtin_datasets() -> tuple[Dataset, ...]:
    """The 30 built-in datasets, validated (cached)."""
    text = resources.files("carewire.datasets").joinpath("builtin.yaml").read_text("utf-8")
    # LibYAML's safe loader when PyYAML has it: the same documents, ten times faster
    # (this runs at every server and CLI start).
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    raw = cast(dict[str, Mapping[str, object]], yaml.load(text, Loader=loader))
    datasets = tuple(dataset_from_dict(n, d, is_builtin=True) for n, d in raw.items())
    validate(datasets)
    return datasets


def validate(datasets: Iterable[Dataset]) -> None:
    """Check a complete set of definitions.

    Raises:
        DefinitionError: Listing every problem found.
    """
    by_name: dict[str, Dataset] = {}
    problems: list[str] = []
    for ds in datasets:
        if ds.name in by_name:
            problems.append(f"{ds.name}: defined twice")
        by_name[ds.name] = ds
    for ds in by_name.values():
        problems += dataset_problems(ds)
        for link in ds.links:
            problems += _link_problems(ds, link, by_name)
    if problems:
        raise DefinitionError(problems)


def dataset_problems(ds: Dataset) -> list[str]:
    """Problems of one dataset on its own: names, duplicates, reserved words, key flags."""
    problems: list[str] = []
    if not DATASET_NAME.match(ds.name) or "__" in ds.name:
        problems.append(
            f"{ds.name!r}: a dataset name is upper-case letters, digits and single underscores"
        )
    seen: set[str] = set()
    for name in ds.field_names:
        if not FIELD_NAME.match(name) or "__" in name:
            problems.append(
                f"{ds.name}.{name}: a name is lower-case letters, digits and single underscores"
            )
        elif name in RESERVED_FIELDS:
            problems.append(f"{ds.name}.{name}: {name!r} is reserved")
        if name in seen:
            problems.append(f"{ds.name}.{name}: the name is used twice")
        seen.add(name)
    columns = {f"{ln.name}_id" for ln in ds.links}
    for attr in ds.attributes:
        if attr.name in columns:
            problems.append(
                f"{ds.name}.{attr.name}: clashes with the column of link {attr.name[:-3]}"
            )
    for link in ds.links:
        if link.is_key and link.is_to_many:
            problems.append(f"{ds.name}.{link.name}: only a to-one link can be part of the key")
    return problems


def _link_problems(ds: Dataset, link: Link, by_name: Mapping[str, Dataset]) -> list[str]:
    where = f"{ds.name}.{link.name}"
    target = by_name.get(link.target)
    if target is None:
        return [f"{where}: links to unknown dataset {link.target}"]
    reverse = target.link(link.reverse)
    if reverse is None:
        return [f"{where}: the reverse link {link.target}.{link.reverse} does not exist"]
    problems = []
    if reverse.target != ds.name or reverse.reverse != link.name:
        problems.append(
            f"{where}: its reverse {link.target}.{link.reverse} points to "
            f"{reverse.target}.{reverse.reverse}, not back here"
        )
    if reverse.cardinality is not link.cardinality.reverse:
        problems.append(
            f"{where}: is {link.cardinality} but its reverse {link.target}.{link.reverse} "
            f"is {reverse.cardinality} (expected {link.cardinality.reverse})"
        )
    if link.is_key != reverse.is_reverse_key:
        problems.append(
            f"{where}: key is {link.is_key} but the reverse's reverse key is "
            f"{reverse.is_reverse_key}"
        )
    return problems

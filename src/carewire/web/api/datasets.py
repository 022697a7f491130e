"""The ``/datasets`` resource: list, read and extend dataset definitions.

Definitions have the same shape as ``builtin.yaml`` (see
:func:`carewire.datasets.definitions.dataset_to_dict`). Every change goes
through the :class:`~carewire.datasets.registry.Registry`, which validates it
against the whole set and adds each new link's reverse to its target. Every
change is recorded in the audit trail with the definition before and after it.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from carewire.datasets.definitions import attribute_from_dict, dataset_to_dict, link_from_dict
from carewire.datasets.model import AttrType, Cardinality, Dataset
from carewire.web.api.deps import Audit, Services, authorize, changes

router = APIRouter(prefix="/datasets", tags=["datasets"], dependencies=[Depends(authorize)])


class AttributeBody(BaseModel):
    """A typed attribute of every record."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(examples=["room_number"])
    type: AttrType
    key: bool = Field(False, description="Part of the dataset's unique key (implies required).")
    required: bool = False
    phi: bool = Field(
        False,
        description="Protected health information: stored encrypted, filtered by equality "
        "only, every read audited (docs/phi.md).",
    )
    description: str = ""


class AttributeChange(BaseModel):
    """What can change on an existing attribute."""

    model_config = ConfigDict(extra="forbid")

    phi: bool = Field(
        description="Mark (true) or unmark (false) as PHI; existing values are encrypted or "
        "decrypted before the answer. Built-in PHI attributes cannot be unmarked."
    )


class LinkBody(BaseModel):
    """A relation to another dataset, with its name on the other side."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(examples=["room"])
    target: str = Field(examples=["ROOMS"])
    reverse: str = Field(description="The link's name on the target.", examples=["beds"])
    cardinality: Cardinality
    key: bool = Field(False, description="The linked record is part of this dataset's key.")
    reverse_key: bool = Field(False, description="This dataset is part of the target's key.")
    description: str = ""


class DatasetBody(BaseModel):
    """A new dataset."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(examples=["EQUIPMENT"])
    description: str = ""
    attributes: list[AttributeBody] = []
    links: list[LinkBody] = []


class DatasetSummary(BaseModel):
    """One line of the dataset list."""

    name: str
    description: str
    is_builtin: bool
    attribute_count: int
    link_count: int


class DatasetList(BaseModel):
    """Every dataset, by name."""

    datasets: list[DatasetSummary]


class DatasetOut(BaseModel):
    """A dataset's full definition."""

    name: str
    description: str
    is_builtin: bool
    attributes: list[AttributeBody]
    links: list[LinkBody]


def _out(ds: Dataset) -> DatasetOut:
    data = {"attributes": [], "links": [], **dataset_to_dict(ds)}
    return DatasetOut.model_validate({**data, "name": ds.name, "is_builtin": ds.is_builtin})


@router.get("", summary="List datasets")
async def list_datasets(services: Services) -> DatasetList:
    """Every dataset with its description and the number of attributes and links."""
    return DatasetList(
        datasets=[
            DatasetSummary(
                name=ds.name,
                description=ds.description,
                is_builtin=ds.is_builtin,
                attribute_count=len(ds.attributes),
                link_count=len(ds.links),
            )
            for ds in services.registry.all()
        ]
    )


@router.get("/{name}", summary="Read a dataset's definition")
async def get_dataset(name: str, services: Services) -> DatasetOut:
    """The dataset's attributes and links."""
    return _out(services.registry.get(name))


@router.post("", status_code=201, summary="Create a dataset")
async def create_dataset(body: DatasetBody, services: Services, audit: Audit) -> DatasetOut:
    """Create a dataset; each link's reverse is added to its target."""
    ds = await services.registry.create_dataset(
        body.name,
        description=body.description,
        attributes=[attribute_from_dict(a.model_dump(mode="json")) for a in body.attributes],
        links=[link_from_dict(ln.model_dump(mode="json")) for ln in body.links],
    )
    await audit("dataset.create", ds.name, details=changes(None, dataset_to_dict(ds)))
    return _out(ds)


@router.post("/{name}/attributes", status_code=201, summary="Add an attribute")
async def add_attribute(
    name: str, body: AttributeBody, services: Services, audit: Audit
) -> DatasetOut:
    """Add an optional, non-key attribute; returns the dataset's new definition."""
    before = dataset_to_dict(services.registry.get(name))
    ds = await services.registry.add_attribute(
        name, attribute_from_dict(body.model_dump(mode="json"))
    )
    await audit("dataset.update", ds.name, details=changes(before, dataset_to_dict(ds)))
    return _out(ds)


@router.patch("/{name}/attributes/{attribute}", summary="Change an attribute's PHI flag")
async def change_attribute(
    name: str, attribute: str, body: AttributeChange, services: Services, audit: Audit
) -> DatasetOut:
    """Mark an attribute as PHI or not; returns the dataset's new definition."""
    before = dataset_to_dict(services.registry.get(name))
    ds = await services.registry.set_phi(name, attribute, is_phi=body.phi)
    await audit("dataset.update", ds.name, details=changes(before, dataset_to_dict(ds)))
    return _out(ds)


@router.post("/{name}/links", status_code=201, summary="Add a link")
async def add_link(name: str, body: LinkBody, services: Services, audit: Audit) -> DatasetOut:
    """Add a non-key link and its reverse on the target; returns the dataset's new definition."""
    before = dataset_to_dict(services.registry.get(name))
    ds = await services.registry.add_link(name, link_from_dict(body.model_dump(mode="json")))
    await audit("dataset.update", ds.name, details=changes(before, dataset_to_dict(ds)))
    return _out(ds)

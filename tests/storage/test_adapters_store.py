"""SqlAdapterStore contract: adapter instances, their settings and unique reference names."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from carewire.adapters.base import AdapterConfig
from carewire.errors import ConflictError
from carewire.storage import Database
from carewire.storage.adapters import SqlAdapterStore

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)

CHAT = AdapterConfig(
    reference_name="Production XMPP",
    component="XMPP",
    is_enabled=True,
    required_datasets={"USERS": "STAFF_USERS", "ROOMS": "ROOMS"},
    settings={
        "chat_domain": "h.example",
        "disable_acknowledgements": False,
        "phone_number_transformations": [{"pattern": "XXXX", "mask": "+1 XXXX", "active": True}],
        "custom_parameters": [{"parameter": "tone", "value": "chime"}],
        "note": "Äbel – ward 4",
    },
)


async def test_insert_all_update_delete(db: Database) -> None:
    store = SqlAdapterStore(db)
    assert await store.all() == []
    chat = await store.insert(CHAT, T0)
    assert chat.id is not None
    assert chat == replace(CHAT, id=chat.id)
    data = await store.insert(AdapterConfig(reference_name="Data", component="DataUpdate"), T0)
    assert data.id is not None
    assert data.id > chat.id
    loaded = await store.all()
    assert loaded == [chat, data]
    assert loaded[0].is_enabled is True
    assert loaded[1].is_enabled is False
    assert loaded[1].settings == {}
    assert loaded[1].required_datasets == {}

    changed = replace(
        chat, reference_name="Staging XMPP", is_enabled=False, settings={"chat_domain": "s.example"}
    )
    await store.update(changed, T0)
    assert await store.all() == [changed, data]

    await store.delete(chat.id)
    assert await store.all() == [data]
    await store.delete(chat.id)  # already gone: nothing happens
    assert await store.all() == [data]


async def test_reference_names_are_unique(db: Database) -> None:
    store = SqlAdapterStore(db)
    await store.insert(CHAT, T0)
    with pytest.raises(ConflictError, match="an adapter named 'Production XMPP' already exists"):
        await store.insert(replace(CHAT, component="DataUpdate", settings={}), T0)
    other = await store.insert(replace(CHAT, reference_name="Other", is_enabled=False), T0)
    with pytest.raises(ConflictError, match="an adapter named 'Production XMPP' already exists"):
        await store.update(replace(other, reference_name="Production XMPP"), T0)
    assert [c.reference_name for c in await store.all()] == ["Production XMPP", "Other"]

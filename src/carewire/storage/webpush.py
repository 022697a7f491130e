"""Web Push subscriptions (:class:`carewire.push.webpush_model.WebPushStore`).

The endpoint (a capability URL) and the browser's keys are sealed together with
the keyring, bound to the owning account and the endpoint's blind index (moved
to another row, they do not decrypt). The blind index keeps one row per
endpoint across accounts: a browser that subscribes for another clinician
(a shared workstation) stops receiving the first one's pushes.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError

from carewire.errors import NotFoundError
from carewire.push.webpush_model import NewWebSubscription, WebSubscription
from carewire.security.envelope import Keyring
from carewire.storage.database import Database
from carewire.storage.tables_push import webpush_subscriptions

_W = webpush_subscriptions.c
#: The blind index's context (docs/encryption.md).
INDEX_CONTEXT = "webpush_subscriptions.endpoint"


def _aad(login: str, index: str) -> bytes:
    return f"webpush_subscriptions.subscription|{login}|{index}".encode()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class SqlWebPushStore:
    """The Web Push store on SQLAlchemy Core."""

    def __init__(self, db: Database, keyring: Keyring) -> None:
        self._db = db
        self._keyring = keyring

    def _index(self, endpoint: str) -> str:
        return self._keyring.blind_index(endpoint, context=INDEX_CONTEXT)

    def _subscription(self, row: Any) -> WebSubscription:
        text = self._keyring.open_text(row.subscription, aad=_aad(row.owner, row.endpoint_index))
        data = json.loads(text)
        return WebSubscription(
            id=int(row.id),
            login=row.owner,
            endpoint=str(data["endpoint"]),
            p256dh=base64.b64decode(data["p256dh"]),
            auth=base64.b64decode(data["auth"]),
            created_at=row.created_at,
        )

    async def add(self, new: NewWebSubscription) -> WebSubscription:
        """Store a subscription, replacing any with the same endpoint (of any account).

        Raises:
            NotFoundError: ``new.login`` has no account.
        """
        index = self._index(new.endpoint)
        sealed = self._keyring.seal_text(
            json.dumps(
                {"endpoint": new.endpoint, "p256dh": _b64(new.p256dh), "auth": _b64(new.auth)}
            ),
            aad=_aad(new.login, index),
        )
        values = {
            "owner": new.login,
            "endpoint_index": index,
            "subscription": sealed,
            "created_at": new.at,
        }
        try:
            async with self._db.transaction("webpush_subscribe") as txn:
                await txn.conn.execute(
                    delete(webpush_subscriptions).where(_W.endpoint_index == index)
                )
                result = await txn.conn.execute(
                    insert(webpush_subscriptions).returning(_W.id), values
                )
                sub_id = int(result.scalar_one())
        except IntegrityError as exc:
            raise NotFoundError(f"no account {new.login!r}") from exc
        return WebSubscription(
            id=sub_id,
            login=new.login,
            endpoint=new.endpoint,
            p256dh=new.p256dh,
            auth=new.auth,
            created_at=new.at,
        )

    async def remove(self, login: str, endpoint: str) -> bool:
        """Remove the account's subscription at ``endpoint``; False if it had none."""
        stmt = delete(webpush_subscriptions).where(
            _W.owner == login, _W.endpoint_index == self._index(endpoint)
        )
        async with self._db.transaction("webpush_unsubscribe") as txn:
            return bool((await txn.conn.execute(stmt)).rowcount)

    async def remove_id(self, sub_id: int) -> None:
        """Remove a subscription the push service said is gone."""
        async with self._db.transaction("webpush_gone") as txn:
            await txn.conn.execute(delete(webpush_subscriptions).where(_W.id == sub_id))

    async def of(self, login: str) -> list[WebSubscription]:
        """The account's subscriptions, oldest first."""
        query = select(webpush_subscriptions).where(_W.owner == login).order_by(_W.id)
        async with self._db.read("webpush_subscriptions_of") as conn:
            rows = (await conn.execute(query)).all()
        return [self._subscription(r) for r in rows]

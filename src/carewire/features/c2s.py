"""Client session housekeeping: legacy session establishment, sessions of removed accounts.

RFC 6121 removed session establishment, but older clients still send
``<session xmlns='urn:ietf:params:xml:ns:xmpp-session'/>``; we advertise it as
optional (in the stream core) and answer it with an empty result.

An account removed while its user is online — by an administrator with the
command-line tool, which writes the database directly — must not keep its
sessions: a periodic check ends them with ``<not-authorized/>``. The same
check ends the sessions of accounts whose login was disabled ("Can Login"
off, ``accounts.is_disabled``) by another process.
"""

from __future__ import annotations

import logging
from xml.etree.ElementTree import Element

from carewire.core import hook_names as H
from carewire.core.events import AccountEvent, IqRequest
from carewire.core.feature import FeatureContext, IqTarget
from carewire.xmpp import ns
from carewire.xmpp.errors import StreamCondition

log = logging.getLogger(__name__)


async def _session(_req: IqRequest) -> Element | None:
    return None


class RemovedAccounts:
    """Ends the sessions of accounts that no longer exist or whose login was disabled."""

    def __init__(self, ctx: FeatureContext) -> None:
        self.ctx = ctx

    async def check(self) -> None:
        """One sweep over the online accounts (two queries per 500 of them)."""
        online = {s.username for s in self.ctx.sessions}
        if not online:
            return
        gone = online - await self.ctx.stores.accounts.existing(sorted(online))
        for login in sorted(gone):
            log.info("account %s was removed: ending its sessions", login)
            for session in self.ctx.sessions.of_user(login):
                session.sink.close(StreamCondition.NOT_AUTHORIZED, "account removed")
            await self.ctx.hooks.fire(H.ACCOUNT_REMOVED, AccountEvent(login=login))
        disabled = await self.ctx.stores.accounts.disabled(sorted(online - gone))
        for login in sorted(disabled):
            log.info("login of %s was disabled: ending its sessions", login)
            self.ctx.accounts.end_sessions(login, text="login disabled")


def setup(ctx: FeatureContext) -> None:
    """Register the legacy session IQ and the removed-account check."""
    ctx.iq.register(
        f"{{{ns.SESSION}}}session",
        _session,
        types=("set",),
        targets=(IqTarget.HOST, IqTarget.ACCOUNT),
    )
    ctx.every("removed-accounts", ctx.config.account_check_interval, RemovedAccounts(ctx).check)

"""XEP-0092 Software Version (carewire.features.version)."""

from __future__ import annotations

from pathlib import Path

from carewire.core.feature import FeatureConfig
from carewire.xmpp import ns
from tests.features.harness import error_condition, make_harness

QUERY = f"{{{ns.VERSION}}}query"
VERSION_GET = f"<iq type='get' id='ver1' to='example.test'><query xmlns='{ns.VERSION}'/></iq>"


async def test_hidden_by_default(tmp_path: Path) -> None:
    h = await make_harness(tmp_path, features=["disco", "version"])
    try:
        reply = await h.ask("alice", VERSION_GET)
        assert reply.get("type") == "error"
        assert error_condition(reply) == "service-unavailable"
        assert ns.VERSION not in h.kernel.disco.server_features
    finally:
        await h.close()


async def test_visible_when_configured(tmp_path: Path) -> None:
    config = FeatureConfig(version_visible=True, server_name="Carewire", server_version="1.2.3")
    h = await make_harness(tmp_path, features=["disco", "version"], config=config)
    try:
        reply = await h.ask("alice", VERSION_GET)
        assert reply.get("type") == "result"
        assert reply.get("from") == h.domain
        query = reply.find(QUERY)
        assert query is not None
        assert query.findtext(f"{{{ns.VERSION}}}name") == "Carewire"
        assert query.findtext(f"{{{ns.VERSION}}}version") == "1.2.3"
        assert query.find(f"{{{ns.VERSION}}}os") is None
        assert ns.VERSION in h.kernel.disco.server_features
        # Only the server answers: a user's bare JID does not.
        reply = await h.ask("alice", f"<iq type='get' id='ver2'><query xmlns='{ns.VERSION}'/></iq>")
        assert error_condition(reply) == "service-unavailable"
    finally:
        await h.close()

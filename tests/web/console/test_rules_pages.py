"""The rules pages over HTTP: the list, the rule form, its errors, dry runs, roles and CSRF."""

from __future__ import annotations

from dataclasses import replace

import httpx

from carewire.rules.conditions import Condition, Group, Mode, Op
from carewire.rules.model import Rule, Trigger
from carewire.security.console_auth import Role
from tests.web.console.conftest import csrf_of
from tests.web.console.test_data_pages import Full, full

__all__ = ["full"]

HEADLINE = "The information provided is either invalid or incomplete."


def rule_form(**changes: str) -> dict[str, str]:
    """A complete rule form: DEVICES seen when registered."""
    form = {
        "purpose": "Mark registered devices seen",
        "name": "Seen",
        "dataset": "DEVICES",
        "adapter": "Data",
        "action": "Update Record",
        "defer": "5",
        "active": "on",
        "on_create": "on",
        "on_update": "on",
        "attributes": "status",
        "mode": "all",
        "cond_count": "1",
        "cond_path_0": "status",
        "cond_op_0": "equals",
        "cond_value_0": "Registered",
        "s_updates": "priority=#{vendor}",
        "do": "save",
    }
    form.update(changes)
    return form


async def post_rule(
    client: httpx.AsyncClient, data: dict[str, str], url: str = "/rules"
) -> httpx.Response:
    token = csrf_of((await client.get("/rules")).text)
    return await client.post(url, data={**data, "csrf_token": token})


async def admin_with_adapter(full: Full) -> httpx.AsyncClient:
    await full.platform.adapters.create("DataUpdate", "Data", is_enabled=True)
    return await full.user("admin")


async def test_new_rule_form(full: Full) -> None:
    admin = await admin_with_adapter(full)
    r = await admin.get("/rules/new?dataset=DEVICES")
    assert r.status_code == 200
    for label in ("Purpose", "Name", "Dataset", "Adapter", "Rule Action", "Active?"):
        assert f">{label}</label>" in r.text, label
    assert "Defer Delivery By (seconds)" in r.text
    assert "Don't send back to originating adapter" in r.text
    assert "Create Event" in r.text and "Update Event" in r.text
    assert "Add Condition" in r.text and ">Remove<" in r.text and ">Choose<" in r.text
    assert '<option value="DEVICES" selected>' in r.text
    assert '<option value="Update Record">' in r.text and "Create Record" in r.text


async def test_choose_add_and_remove_conditions(full: Full) -> None:
    admin = await admin_with_adapter(full)
    r = await post_rule(admin, rule_form(do="choose", s_updates=""))
    assert r.status_code == 200 and '<textarea id="s_updates" name="s_updates"' in r.text
    assert "Adapter Settings: Update Record" in r.text
    r = await post_rule(admin, rule_form(do="add_condition"))
    assert 'name="cond_path_1"' in r.text and 'value="Registered"' in r.text
    r = await post_rule(admin, rule_form(do="remove_0"))
    assert 'name="cond_path_0"' not in r.text and 'name="cond_count" value="0"' in r.text
    assert full.platform.rules.list_rules() == []


async def test_rule_errors_in_console_wording(full: Full) -> None:
    admin = await admin_with_adapter(full)
    r = await post_rule(admin, rule_form(action=""))
    assert r.status_code == 400
    assert HEADLINE in r.text and "<li>- Required: Rule Action</li>" in r.text
    r = await post_rule(admin, rule_form(dataset="ROOMS", cond_path_0="nope", s_updates=""))
    assert r.status_code == 400
    assert "ROOMS has no attribute or link &#39;nope&#39;" in r.text
    r = await post_rule(admin, rule_form(s_updates=""))
    assert r.status_code == 400 and "<li>- Required: Updates</li>" in r.text
    r = await post_rule(admin, rule_form(s_updates="status=#{nope}"))
    assert r.status_code == 400 and "nope" in r.text
    r = await post_rule(admin, rule_form(name="", defer="soon"))
    assert "<li>- Required: Name</li>" in r.text and "Defer Delivery By" in r.text
    assert 'value="status=#{nope}"' not in r.text  # the form comes back as typed
    assert full.platform.rules.list_rules() == []


async def test_saved_rule_equals_the_service(full: Full) -> None:
    admin = await admin_with_adapter(full)
    r = await post_rule(admin, rule_form())
    assert (r.status_code, r.headers["location"]) == (303, "/rules?dataset=DEVICES&m=saved")
    saved = full.platform.rules.find("Seen")
    assert saved is not None and saved.id is not None
    expected = Rule(
        id=saved.id,
        name="Seen",
        purpose="Mark registered devices seen",
        dataset="DEVICES",
        adapter="Data",
        action="Update Record",
        trigger=Trigger(on_create=True, on_update=True, attributes=("status",)),
        conditions=Group(
            mode=Mode.ALL, items=(Condition(path="status", op=Op.EQUALS, value="Registered"),)
        ),
        defer_seconds=5,
        is_active=True,
        settings={"updates": [{"path": "priority", "value": "#{vendor}"}]},
    )
    assert saved == expected
    listing = await admin.get(r.headers["location"])
    assert f'href="/rules/{saved.id}/edit">Seen</a>' in listing.text
    assert "The rule was saved." in listing.text
    edit = await admin.get(f"/rules/{saved.id}/edit")
    assert "priority=#{vendor}" in edit.text and 'value="Registered"' in edit.text
    r = await post_rule(admin, rule_form(purpose="changed"), f"/rules/{saved.id}/edit")
    assert r.status_code == 303
    assert full.platform.rules.get(saved.id) == replace(expected, purpose="changed")
    entries, _ = await full.platform.audit.store.entries(action="rule")
    assert [e.event.action for e in entries] == ["rule.update", "rule.create"]
    assert entries[0].event.details["after"]["purpose"] == "changed"  # type: ignore[index]


async def test_dry_run(full: Full) -> None:
    admin = await admin_with_adapter(full)
    device = await full.platform.datasets.create(
        "DEVICES", {"name": "badge-1", "status": "Registered", "vendor": "Acme"}
    )
    r = await post_rule(admin, rule_form(do="dry_run", dry_record=str(device.id)))
    assert r.status_code == 200 and "The conditions match" in r.text
    assert "Acme" in r.text and "priority" in r.text
    r = await post_rule(admin, rule_form(do="dry_run", dry_record=str(device.id), cond_value_0="x"))
    assert "The conditions do not match" in r.text
    r = await post_rule(admin, rule_form(do="dry_run", dry_record="999"))
    assert r.status_code == 400 and "Dry run:" in r.text
    assert full.platform.rules.list_rules() == []


async def test_activate_and_delete(full: Full) -> None:
    admin = await admin_with_adapter(full)
    await post_rule(admin, rule_form())
    saved = full.platform.rules.find("Seen")
    assert saved is not None and saved.id is not None
    r = await post_rule(admin, {}, f"/rules/{saved.id}/active")
    assert r.status_code == 303 and not full.platform.rules.get(saved.id).is_active
    r = await post_rule(admin, {"active": "on"}, f"/rules/{saved.id}/active")
    assert full.platform.rules.get(saved.id).is_active
    confirm = await admin.get(f"/rules/{saved.id}/delete")
    assert "Delete the rule Seen?" in confirm.text
    r = await post_rule(admin, {}, f"/rules/{saved.id}/delete")
    assert r.status_code == 303 and full.platform.rules.list_rules() == []
    assert (await admin.get(f"/rules/{saved.id}/edit")).status_code == 404


async def test_auditor_and_csrf(full: Full) -> None:
    admin = await admin_with_adapter(full)
    await post_rule(admin, rule_form())
    saved = full.platform.rules.find("Seen")
    assert saved is not None
    auditor = await full.user("audrey", Role.AUDITOR)
    r = await auditor.get("/rules")
    assert r.status_code == 200 and "Seen" in r.text and "New rule" not in r.text
    r = await auditor.get(f"/rules/{saved.id}/edit")
    assert r.status_code == 200 and "disabled" in r.text and "Save rule" not in r.text
    assert (await auditor.get("/rules/new")).status_code == 403
    for url in ("/rules", f"/rules/{saved.id}/edit", f"/rules/{saved.id}/delete"):
        assert (await post_rule(auditor, rule_form(), url)).status_code == 403, url
    r = await admin.post("/rules", data=rule_form(name="Other"))
    assert r.status_code == 403 and full.platform.rules.find("Other") is None


async def test_a_priority_given_as_an_expression_survives_the_form(full: Full) -> None:
    await full.platform.adapters.create(
        "XMPP", "Chat", is_enabled=True, settings={"chat_domain": "h.example"}
    )
    admin = await admin_with_adapter(full)
    form = rule_form(
        adapter="Chat",
        action="Send Alert",
        s_recipients="nurse",
        s_subject="Device #{name}",
        s_message="m",
        s_ttl="5",
        s_priority="#{vendor}",
    )
    del form["s_updates"]
    r = await post_rule(admin, form)
    assert r.status_code == 303, r.text
    saved = full.platform.rules.find("Seen")
    assert saved is not None and saved.settings["priority"] == "#{vendor}"
    edit = await admin.get(f"/rules/{saved.id}/edit")
    # a text field offering the four priorities, not a select that would lose the expression
    assert 'value="#{vendor}" list="s_priority_choices"' in edit.text
    assert '<option value="Critical">' in edit.text

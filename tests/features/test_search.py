"""XEP-0055 search of the organisation directory (carewire.features.search)."""

from __future__ import annotations

from xml.etree.ElementTree import Element

import pytest

from carewire.directory.model import NO_ONE, SYSTEM_CALLER, Organisation
from carewire.features.search import MAX_RESULTS, SEARCH
from carewire.xmpp import ns
from tests.features import directory_setup
from tests.features.directory_setup import Directory
from tests.features.harness import error_condition

# The fixture ``d``: the whole assembly on each database kind.
directory_fixture = directory_setup.directory_fixture
db_url = directory_setup.db_url

Q = f"{{{SEARCH}}}"
X = f"{{{ns.DATA_FORMS}}}"


async def search(d: Directory, login: str, criteria: str, *, iq_type: str = "set") -> Element:
    return await d.reply(
        login,
        f"<iq type='{iq_type}' id='s1' to='{d.domain}'>"
        f"<query xmlns='{SEARCH}'>{criteria}</query></iq>",
    )


def jids(answer: Element) -> list[str]:
    assert answer.get("type") == "result", answer
    return [i.get("jid", "") for i in answer.iter(f"{Q}item")]


async def world(d: Directory) -> tuple[Organisation, Organisation, Organisation]:
    """Abelard (hospital) with the Oak Street practice; Bellwood, unaffiliated."""
    abelard = await d.hospital("Abelard Medical Center")
    oak = await d.practice(abelard, "Oak Street Clinic")
    bellwood = await d.hospital("Bellwood Hospital")
    await d.user(abelard, "alice", "Alice", "Smith")
    await d.user(abelard, "adam", "Adam", "Smithers")
    await d.user(abelard, "zoe", "Zoe", "Abbot")
    await d.user(oak, "olga", "Olga", "Smith")
    await d.user(bellwood, "bella", "Bella", "Smith")
    return abelard, oak, bellwood


async def test_the_fields_and_the_form_are_offered(d: Directory) -> None:
    await world(d)
    answer = await search(d, "alice", "", iq_type="get")
    query = answer.find(f"{Q}query")
    assert query is not None
    assert query.findtext(f"{Q}instructions")
    for name in ("first", "last", "nick", "email"):
        assert query.find(f"{Q}{name}") is not None
    form = query.find(f"{X}x")
    assert form is not None and form.get("type") == "form"
    fields = {f.get("var"): f for f in form.iter(f"{X}field")}
    assert fields["FORM_TYPE"].findtext(f"{X}value") == SEARCH
    assert {"first", "last", "nick", "email"} <= set(fields)


async def test_a_search_finds_only_whom_the_searcher_may_message_sorted(d: Directory) -> None:
    await world(d)
    answer = await search(d, "zoe", "<last>smith</last>")
    # Bella of Bellwood may not be messaged; the practice's Olga may.
    assert jids(answer) == [d.jid("alice"), d.jid("olga"), d.jid("adam")]
    first = next(answer.iter(f"{Q}item"))
    assert first.findtext(f"{Q}first") == "Alice"
    assert first.findtext(f"{Q}last") == "Smith"
    assert first.findtext(f"{Q}nick") == "alice"
    assert first.findtext(f"{Q}email") == "alice@1.org"


async def test_the_searcher_is_not_a_result_and_criteria_combine(d: Directory) -> None:
    await world(d)
    assert jids(await search(d, "alice", "<last>Smith</last><first>AL</first>")) == []
    assert jids(await search(d, "zoe", "<last>Smith</last><first>AL</first>")) == [d.jid("alice")]
    assert jids(await search(d, "zoe", "<nick>dam</nick>")) == [d.jid("adam")]
    assert jids(await search(d, "zoe", "<email>olga@</email>")) == [d.jid("olga")]


async def test_a_permission_of_none_hides_the_affiliate(d: Directory) -> None:
    abelard, oak, _ = await world(d)
    await d.svc.affiliations.set_permission(SYSTEM_CALLER, oak.id, abelard.id, NO_ONE)
    assert jids(await search(d, "zoe", "<last>smith</last>")) == [d.jid("alice"), d.jid("adam")]


async def test_a_form_search_answers_with_a_result_form(d: Directory) -> None:
    await world(d)
    form = (
        f"<x xmlns='{ns.DATA_FORMS}' type='submit'>"
        f"<field var='FORM_TYPE' type='hidden'><value>{SEARCH}</value></field>"
        "<field var='last'><value>Smith</value></field><field var='first'><value>ol</value></field>"
        "<field var='email'/></x>"
    )
    answer = await search(d, "zoe", form)
    result = answer.find(f"{Q}query/{X}x")
    assert result is not None and result.get("type") == "result"
    reported = [f.get("var") for f in result.iterfind(f"{X}reported/{X}field")]
    assert reported == ["jid", "first", "last", "nick", "email"]
    (item,) = result.iterfind(f"{X}item")
    values = {f.get("var"): f.findtext(f"{X}value") for f in item.iter(f"{X}field")}
    assert values == {
        "jid": d.jid("olga"),
        "first": "Olga",
        "last": "Smith",
        "nick": "olga",
        "email": "olga@2.org",
    }
    assert answer.find(f"{Q}query/{Q}item") is None  # a form asks for a form


async def test_results_are_capped(d: Directory) -> None:
    org = await d.hospital("Abelard Medical Center")
    for n in range(MAX_RESULTS + 3):
        await d.user(org, f"u{n:02}", f"First{n:02}", "Common")
    answer = await search(d, "u00", "<last>common</last>")
    found = jids(answer)
    assert len(found) == MAX_RESULTS
    assert found[0] == d.jid("u01")  # by first name within one last name; not the searcher


@pytest.mark.parametrize(
    "criteria",
    [
        "",
        "<first/>",
        "<first>   </first>",
        "<bogus>x</bogus>",
        "<first>a</first><first>b</first>",
        f"<last>{'x' * 300}</last>",
        f"<x xmlns='{ns.DATA_FORMS}' type='form'><field var='last'><value>a</value></field></x>",
        f"<x xmlns='{ns.DATA_FORMS}' type='submit'><field var='FORM_TYPE'><value>other</value>"
        "</field><field var='last'><value>a</value></field></x>",
        f"<x xmlns='{ns.DATA_FORMS}' type='submit'><field var='age'><value>3</value></field></x>",
    ],
)
async def test_bad_requests(d: Directory, criteria: str) -> None:
    org = await d.hospital("Abelard Medical Center")
    await d.user(org, "alice", "Alice", "Smith")
    answer = await search(d, "alice", criteria)
    assert answer.get("type") == "error"
    assert error_condition(answer) == "bad-request"


async def test_search_is_advertised(d: Directory) -> None:
    answer = await d.reply(
        "someone", f"<iq type='get' id='d' to='{d.domain}'><query xmlns='{ns.DISCO_INFO}'/></iq>"
    )
    features = {f.get("var") for f in answer.iter(f"{{{ns.DISCO_INFO}}}feature")}
    assert SEARCH in features

"""XEP-0055 Jabber Search of the organisation directory, answered by the server (``to=DOMAIN``).

A client asks for the search fields (IQ get) and gets the legacy fields
``first``, ``last``, ``nick`` and ``email`` together with the equivalent
XEP-0004 form (FORM_TYPE ``jabber:iq:search``, XEP-0055 §3); it submits
either (IQ set) and gets the matches in the same shape: legacy ``<item/>``
elements, or a form of type ``result`` with ``<reported/>`` fields.

Matching: every field given is a case-insensitive substring of the user's
first name, last name, e-mail address, or login (``nick``: the localpart of
the user's JID), combined with AND; at least one must be given. Results are
directory users the searcher may message (the directory's policy: their own
organisation and the affiliated ones whose permissions let both through),
never the searcher, at most :data:`MAX_RESULTS`, sorted by last then first
name. Anything else (no criterion, a value too long, an unknown field, a form
that is not a submission of this FORM_TYPE) is ``bad-request``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final
from xml.etree.ElementTree import Element, SubElement

from carewire.core.events import IqRequest
from carewire.core.feature import FeatureContext, IqTarget
from carewire.directory.model import (
    SYSTEM_CALLER,
    DirectoryUser,
    OrganisationId,
    PageRequest,
    UserFilter,
)
from carewire.directory.policy import may_reach
from carewire.directory.service import DirectoryService
from carewire.xmpp import ns
from carewire.xmpp.errors import StanzaCondition, StanzaError

log = logging.getLogger(__name__)

SEARCH: Final = "jabber:iq:search"
QUERY: Final = f"{{{SEARCH}}}query"
X: Final = f"{{{ns.DATA_FORMS}}}x"
FIELD: Final = f"{{{ns.DATA_FORMS}}}field"
VALUE: Final = f"{{{ns.DATA_FORMS}}}value"
#: The legacy fields, in order, with the form labels of the XEP-0055 §5 registry.
FIELDS: Final = {
    "first": "First Name",
    "last": "Family Name",
    "nick": "Nickname",
    "email": "Email Address",
}
INSTRUCTIONS: Final = (
    "Fill in one or more fields to search for colleagues you may message "
    "(parts of a name, an e-mail address or a login)."
)
MAX_RESULTS: Final = 50
MAX_VALUE: Final = 256
#: Users read per query to the directory, and at most per organisation (a nick-only search).
PAGE: Final = 100
MAX_SCAN: Final = 2000


@dataclass(frozen=True, slots=True, kw_only=True)
class Criteria:
    """What a search asks (lower-case; "" matches everything)."""

    first: str = ""
    last: str = ""
    nick: str = ""
    email: str = ""

    @property
    def is_empty(self) -> bool:
        """Whether no field was given."""
        return not (self.first or self.last or self.nick or self.email)


def _local(tag: str) -> tuple[str, str]:
    namespace, _, local = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
    return namespace, local


def _criteria(values: dict[str, str]) -> Criteria:
    cleaned: dict[str, str] = {}
    for name, value in values.items():
        value = value.strip()
        if len(value) > MAX_VALUE:
            raise StanzaError(StanzaCondition.BAD_REQUEST, f"'{name}' is too long")
        cleaned[name] = value.lower()
    criteria = Criteria(**cleaned)
    if criteria.is_empty:
        raise StanzaError(StanzaCondition.BAD_REQUEST, "fill in at least one field")
    return criteria


def parse_request(query: Element) -> tuple[Criteria, bool]:
    """The criteria of a search (IQ set) and whether it was a data form.

    Raises:
        StanzaError: ``bad-request`` (see the module docstring).
    """
    form = query.find(X)
    if form is not None:
        return _parse_form(form), True
    values: dict[str, str] = {}
    for child in query:
        namespace, local = _local(child.tag)
        if namespace != SEARCH or local not in FIELDS or local in values:
            raise StanzaError(StanzaCondition.BAD_REQUEST, f"unexpected <{local}/>")
        values[local] = child.text or ""
    return _criteria(values), False


def _parse_form(form: Element) -> Criteria:
    # XEP-0004 §3.3: the requester submits with type 'submit'.
    if form.get("type") != "submit":
        raise StanzaError(StanzaCondition.BAD_REQUEST, "submit the search form")
    values: dict[str, str] = {}
    for field in form.iter(FIELD):
        var = field.get("var", "")
        value = field.findtext(VALUE) or ""
        if var == "FORM_TYPE":
            if value != SEARCH:
                raise StanzaError(StanzaCondition.BAD_REQUEST, "not a jabber:iq:search form")
        elif var in FIELDS and var not in values:
            values[var] = value
        else:
            raise StanzaError(StanzaCondition.BAD_REQUEST, f"unknown field {var!r}")
    return _criteria(values)


def _form_field(parent: Element, var: str, type_: str, label: str = "", value: str = "") -> None:
    attrs = {"var": var, "type": type_}
    if label:
        attrs["label"] = label
    field = SubElement(parent, FIELD, attrs)
    if value:
        SubElement(field, VALUE).text = value


def fields_query() -> Element:
    """The answer to an IQ get: instructions, the legacy fields and the form (XEP-0055 §3)."""
    query = Element(QUERY)
    SubElement(query, f"{{{SEARCH}}}instructions").text = INSTRUCTIONS
    for name in FIELDS:
        SubElement(query, f"{{{SEARCH}}}{name}")
    form = SubElement(query, X, {"type": "form"})
    SubElement(form, f"{{{ns.DATA_FORMS}}}title").text = "Directory search"
    SubElement(form, f"{{{ns.DATA_FORMS}}}instructions").text = INSTRUCTIONS
    _form_field(form, "FORM_TYPE", "hidden", value=SEARCH)
    for name, label in FIELDS.items():
        _form_field(form, name, "text-single", label)
    return query


def _values(user: DirectoryUser) -> dict[str, str]:
    return {
        "first": user.profile.first_name,
        "last": user.profile.last_name,
        "nick": user.login,
        "email": user.profile.email,
    }


def results_query(users: list[DirectoryUser], domain: str, *, as_form: bool) -> Element:
    """The answer to a search: legacy items, or a form of type ``result``."""
    query = Element(QUERY)
    if not as_form:
        for user in users:
            item = SubElement(query, f"{{{SEARCH}}}item", {"jid": f"{user.login}@{domain}"})
            for name, value in _values(user).items():
                SubElement(item, f"{{{SEARCH}}}{name}").text = value
        return query
    form = SubElement(query, X, {"type": "result"})
    _form_field(form, "FORM_TYPE", "hidden", value=SEARCH)
    reported = SubElement(form, f"{{{ns.DATA_FORMS}}}reported")
    _form_field(reported, "jid", "jid-single", "Jabber ID")
    for name, label in FIELDS.items():
        _form_field(reported, name, "text-single", label)
    for user in users:
        item = SubElement(form, f"{{{ns.DATA_FORMS}}}item")
        values = {"jid": f"{user.login}@{domain}", **_values(user)}
        for var, value in values.items():
            field = SubElement(item, FIELD, {"var": var})
            SubElement(field, VALUE).text = value
    return query


def _sort_key(user: DirectoryUser) -> tuple[str, str, str]:
    return (user.profile.last_name.lower(), user.profile.first_name.lower(), user.login)


class DirectorySearch:
    """Searches the directory for a user, within what the policy lets them reach."""

    def __init__(self, ctx: FeatureContext, directory: DirectoryService) -> None:
        self.ctx = ctx
        self.directory = directory

    async def search(self, searcher: str, criteria: Criteria) -> list[DirectoryUser]:
        """The users ``searcher`` may message matching ``criteria`` (sorted, at most 50)."""
        index = self.directory.index
        graph = index.graph
        own = index.organisation_of(searcher)
        orgs = [o for o in graph.kinds if own is None or may_reach(graph, own, o)]
        hits: list[DirectoryUser] = []
        for org in sorted(orgs):
            hits.extend(await self._in_organisation(org, searcher, criteria))
        hits.sort(key=_sort_key)
        return hits[:MAX_RESULTS]

    async def _in_organisation(
        self, org: OrganisationId, searcher: str, criteria: Criteria
    ) -> list[DirectoryUser]:
        """Up to 50 matches of one organisation, in the directory's name order."""
        index = self.directory.index
        wanted = UserFilter(
            first_name=criteria.first, last_name=criteria.last, email=criteria.email
        )
        found: list[DirectoryUser] = []
        offset = 0
        while len(found) < MAX_RESULTS and offset < MAX_SCAN:
            page = await self.directory.users.find(
                SYSTEM_CALLER, org, wanted, page=PageRequest(offset=offset, limit=PAGE)
            )
            for user in page.items:
                if user.login == searcher or criteria.nick not in user.login:
                    continue
                if index.may_message(searcher, user.login):
                    found.append(user)
            offset += len(page.items)
            if not page.items or offset >= page.total:
                break
        return found

    async def handle_get(self, req: IqRequest) -> Element | None:
        """IQ get: the search fields."""
        return fields_query()

    async def handle_set(self, req: IqRequest) -> Element | None:
        """IQ set: a search."""
        criteria, as_form = parse_request(req.payload)
        users = await self.search(req.sender_login, criteria)
        return results_query(users, self.ctx.hosts.domain, as_form=as_form)


def setup(ctx: FeatureContext) -> None:
    """Answer jabber:iq:search at the server and advertise it (XEP-0030)."""
    search = DirectorySearch(ctx, ctx.require(DirectoryService))
    ctx.iq.register(QUERY, search.handle_get, types=("get",), targets=(IqTarget.HOST,))
    ctx.iq.register(QUERY, search.handle_set, types=("set",), targets=(IqTarget.HOST,))
    ctx.disco.add_server_feature(SEARCH)

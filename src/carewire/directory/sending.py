"""Making and mailing user invitations (Invite Users, Create Practice or Hospital, Create User).

Theory of operation: :func:`plan` reads what an invite request names (typed
addresses, CSV rows) and decides, before anything is written, which
addresses get a new invitation, which pending or failed invitation is resent,
and which are skipped (registered users, duplicates, bad CSV rows); a
malformed typed address refuses the whole request. :func:`apply` writes the
plan inside the caller's transaction (groups from the Department column,
then the invitations, many rows per statement). After the commit,
:func:`mail` queues the messages on the service's job queue: each
invitation goes from Pending to Email Sent or Failure as the mailer answers.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from carewire.directory.context import Context
from carewire.directory.csvfiles import parse_csv, split_emails
from carewire.directory.groups import ensure_groups, indexed
from carewire.directory.mails import expiry_text, user_invitation
from carewire.directory.model import (
    MAX_EMAILS_PER_REQUEST,
    Caller,
    CsvProblem,
    Group,
    InvalidFieldError,
    Invitation,
    InvitationEvent,
    InvitationId,
    InvitationStatus,
    InviteRequest,
    InviteResult,
    Organisation,
)
from carewire.directory.policy import next_status, normalize_email
from carewire.directory.store import NewInvitation

log = logging.getLogger(__name__)

#: Requests of at most this many invitations wait for their mail (statuses are final).
INLINE_MAIL = 100
#: Invitations whose status is written together after mailing.
STATUS_BATCH = 200


@dataclass(frozen=True, slots=True, kw_only=True)
class Wanted:
    """One address to invite."""

    email: str
    first_name: str = ""
    last_name: str = ""
    department: str = ""
    is_admin: bool = False
    login: str | None = None  # an administrator-created user the invitation completes


@dataclass(slots=True, kw_only=True)
class Plan:
    """What an invite request will do (see the module docstring)."""

    new: list[Wanted] = field(default_factory=list)
    resend: list[Invitation] = field(default_factory=list)
    existing_users: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    problems: list[CsvProblem] = field(default_factory=list)
    departments: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True, kw_only=True)
class Issued:
    """An invitation written, with its token (for the mail; never stored)."""

    invitation: Invitation
    token: str


def wanted_of(request: InviteRequest) -> tuple[list[Wanted], list[CsvProblem]]:
    """The addresses an invite request names, typed ones first; nothing is read from storage.

    Raises:
        InvalidEmailError: A typed address is malformed (the whole request is refused).
        InvalidFieldError: Too many typed addresses, or nothing at all to invite.
        CsvError: The CSV cannot be read at all.
    """
    typed = split_emails(request.emails)
    if len(typed) > MAX_EMAILS_PER_REQUEST:
        raise InvalidFieldError(
            "emails", f"At most {MAX_EMAILS_PER_REQUEST:,} addresses can be typed at once."
        )
    wanted = [Wanted(email=normalize_email(e), is_admin=request.is_admin) for e in typed]
    problems: list[CsvProblem] = []
    if request.csv_text is not None:
        rows, problems = parse_csv(request.csv_text)
        wanted += [
            Wanted(
                email=r.email,
                first_name=r.first_name,
                last_name=r.last_name,
                department=r.department,
                is_admin=request.is_admin,
            )
            for r in rows
        ]
    if not wanted and not problems:
        raise InvalidFieldError("emails", "Give at least one e-mail address or a CSV file.")
    return wanted, problems


async def plan(
    ctx: Context, org: Organisation, wanted: Sequence[Wanted], problems: Sequence[CsvProblem] = ()
) -> Plan:
    """Decide what to do with each address (reads, never writes)."""
    result = Plan(problems=list(problems))
    unique: dict[str, Wanted] = {}
    for w in wanted:
        if w.department and w.department.lower() not in {d.lower() for d in result.departments}:
            result.departments.append(w.department)
        if not w.email:
            continue
        first = unique.get(w.email)
        if first is None:
            unique[w.email] = w
            continue
        result.duplicates.append(w.email)
        unique[w.email] = replace(
            first,
            first_name=first.first_name or w.first_name,
            last_name=first.last_name or w.last_name,
            department=first.department or w.department,
        )
    users = await ctx.store.users.by_emails(list(unique))
    open_ = await ctx.store.invitations.open_for(org.id, list(unique))
    for email, w in unique.items():
        user = users.get(email)
        if user is not None and (user.is_registered or user.organisation_id != org.id):
            result.existing_users.append(email)
        elif email in open_:
            result.resend.append(open_[email])
        else:
            result.new.append(w if user is None else replace(w, login=user.login))
    return result


async def apply(
    ctx: Context, caller: Caller, org: Organisation, todo: Plan
) -> tuple[list[Issued], list[Group]]:
    """Write the plan (inside the caller's transaction): groups, new invitations, resends.

    Returns:
        Every invitation to mail (new ones first) and the groups created.
    """
    now = ctx.clock.now()
    created: list[Group] = []
    if todo.departments:
        _, created = await ensure_groups(ctx, org.id, todo.departments, now)
    expires = now + ctx.config.invitation_link_ttl
    tokens = [ctx.new_token() for _ in todo.new]
    rows = [
        NewInvitation(
            organisation_id=org.id,
            email=w.email,
            first_name=w.first_name,
            last_name=w.last_name,
            department=w.department,
            is_admin=w.is_admin,
            token_hash=digest,
            expires_at=expires,
            invited_by=caller.actor,
            at=now,
            login=w.login,
        )
        for w, (_, digest) in zip(todo.new, tokens, strict=True)
    ]
    added = await ctx.store.invitations.add_many(rows)
    issued = [Issued(invitation=i, token=t) for i, (t, _) in zip(added, tokens, strict=True)]
    for old in todo.resend:
        issued.append(await reissue(ctx, caller, old, now))
    return issued, created


async def reissue(ctx: Context, caller: Caller, old: Invitation, now: datetime) -> Issued:
    """A new link for an invitation (the old one stops working); back to Pending."""
    next_status(old.status, InvitationEvent.RESENT)  # refuses Registered
    token, digest = ctx.new_token()
    invitation = await ctx.store.invitations.reissue(
        old.id,
        token_hash=digest,
        expires_at=now + ctx.config.invitation_link_ttl,
        at=now,
        invited_by=caller.actor,
    )
    return Issued(invitation=invitation, token=token)


def result_of(todo: Plan, issued: Sequence[Invitation], created: Sequence[Group]) -> InviteResult:
    """The request's outcome for the caller (``issued``: new ones, then resent ones)."""
    n = len(todo.new)
    return InviteResult(
        invited=tuple(issued[:n]),
        resent=tuple(issued[n:]),
        existing_users=tuple(todo.existing_users),
        duplicates=tuple(todo.duplicates),
        problems=tuple(sorted(todo.problems, key=lambda p: p.line)),
        groups_created=tuple(g.name for g in created),
    )


async def mail(ctx: Context, org: Organisation, issued: Sequence[Issued]) -> list[Invitation]:
    """Queue the invitations' mail; for a small batch, wait and return the final statuses."""
    if not issued:
        return []
    future = ctx.jobs.submit(lambda: _send_all(ctx, org, list(issued)))
    if len(issued) > INLINE_MAIL:
        return [i.invitation for i in issued]
    try:
        statuses = await future
    except Exception:  # logged by the job queue; the invitations stay Pending (resend works)
        return [i.invitation for i in issued]
    assert isinstance(statuses, dict)
    now = ctx.clock.now()
    return [
        replace(i.invitation, status=statuses[i.invitation.id], updated_at=now)
        if i.invitation.id in statuses
        else i.invitation
        for i in issued
    ]


async def _send_all(
    ctx: Context, org: Organisation, issued: list[Issued]
) -> dict[InvitationId, InvitationStatus]:
    statuses: dict[InvitationId, InvitationStatus] = {}
    tz = org.settings.default_time_zone
    for start in range(0, len(issued), STATUS_BATCH):
        sent: list[InvitationId] = []
        failed: list[InvitationId] = []
        for item in issued[start : start + STATUS_BATCH]:
            inv = item.invitation
            message = user_invitation(
                to=inv.email,
                first_name=inv.first_name,
                organisation=org.name,
                url=ctx.link(f"/register/{item.token}"),
                expires=expiry_text(inv.expires_at, tz),
                is_admin=inv.is_admin,
            )
            (sent if await ctx.send(message) else failed).append(inv.id)
        now = ctx.clock.now()
        for ids, event in (
            (sent, InvitationEvent.MAIL_ACCEPTED),
            (failed, InvitationEvent.MAIL_REFUSED),
        ):
            if ids:
                status = next_status(InvitationStatus.PENDING, event)
                await ctx.store.invitations.set_status(
                    ids, status, now, only_from=InvitationStatus.PENDING
                )
                statuses.update(dict.fromkeys(ids, status))
    log.info("invitations of organisation %s mailed: %d", org.id, len(issued))
    return statuses


def index_groups(ctx: Context, created: Sequence[Group]) -> None:
    """Put groups created by a request in the index (after the commit)."""
    for group in created:
        ctx.index.set_group(indexed(group))

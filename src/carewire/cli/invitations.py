"""``carewire user invite --csv``'s steps: commit the rows in requests, then wait for the mail.

Kept apart from :mod:`carewire.cli.users` so the benchmark (``bench.directory``)
can time the two steps of the command separately with the command's own code.
"""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from carewire.directory.model import Caller, InviteResult
    from carewire.directory.service import DirectoryService

#: How often the mailing progress bar looks at the mail queue (seconds).
MAIL_POLL = 0.2


async def invite_csv(
    directory: DirectoryService,
    caller: Caller,
    organisation_id: int,
    batches: list[tuple[str, int]],
    *,
    is_admin: bool = False,
    quiet: bool = False,
) -> list[InviteResult]:
    """Invite ``batches`` (from :func:`invite_batches`) one request each, then wait for the mail.

    Two progress bars on stderr: ``inviting`` (rows committed, Pending) and
    ``mailing`` (invitations whose mail went out, a request's worth at a time).
    """
    results, queued = await submit_invitations(
        directory, caller, organisation_id, batches, is_admin=is_admin, quiet=quiet
    )
    await wait_for_mail(directory, queued, quiet=quiet)
    return results


async def submit_invitations(
    directory: DirectoryService,
    caller: Caller,
    organisation_id: int,
    batches: list[tuple[str, int]],
    *,
    is_admin: bool = False,
    quiet: bool = False,
) -> tuple[list[InviteResult], list[int]]:
    """Commit ``batches``, one request each (the ``inviting`` bar).

    Returns:
        The results, and the number of mails of each request whose mail was
        queued (not sent before it returned), in queue order.
    """
    from tqdm import tqdm

    from carewire.directory.model import InvitationStatus, InviteRequest

    results: list[InviteResult] = []
    queued: list[int] = []
    rows = sum(count for _, count in batches)
    with tqdm(total=rows, desc="inviting", unit="row", disable=quiet, file=sys.stderr) as bar:
        for text, count in batches:
            result = await directory.invitations.invite(
                caller, organisation_id, InviteRequest(csv_text=text, is_admin=is_admin)
            )
            results.append(result)
            sent = [*result.invited, *result.resent]
            if any(i.status is InvitationStatus.PENDING for i in sent):
                queued.append(len(sent))
            bar.update(count)
    return results, queued


async def wait_for_mail(directory: DirectoryService, queued: list[int], *, quiet: bool) -> None:
    """Wait until the mail of ``queued`` (:func:`submit_invitations`) went out (``mailing``)."""
    from tqdm import tqdm

    if not queued:
        return
    with tqdm(
        total=sum(queued), desc="mailing", unit="mail", disable=quiet, file=sys.stderr
    ) as bar:
        done = 0
        while True:
            backlog = directory.mail_backlog
            while done < len(queued) - backlog:
                bar.update(queued[done])
                done += 1
            if backlog == 0:
                break
            await asyncio.sleep(MAIL_POLL)
    await directory.drain()


async def failed_invitations(
    directory: DirectoryService, caller: Caller, organisation_id: int, results: list[InviteResult]
) -> list[str]:
    """The addresses among ``results`` whose mail failed (read after the mail was sent)."""
    from carewire.directory.model import (
        MAX_PAGE_SIZE,
        InvitationFilter,
        InvitationStatus,
        PageRequest,
    )

    ours = {i.id: i.email for r in results for i in (*r.invited, *r.resent)}
    failed: list[str] = []
    wanted = InvitationFilter(status=InvitationStatus.FAILURE)
    offset = 0
    while True:
        page = await directory.invitations.find(
            caller, organisation_id, wanted, PageRequest(offset=offset, limit=MAX_PAGE_SIZE)
        )
        failed += [ours[i.id] for i in page.items if i.id in ours]
        offset += len(page.items)
        if not page.items or offset >= page.total:
            return failed

"""The directory's errors, each with a machine-readable ``code``."""

from __future__ import annotations

from carewire.directory.model.base import INVALID_EMAIL, LINK_GONE
from carewire.errors import (
    CarewireError,
    ConflictError,
    ForbiddenError,
    GoneError,
    NotFoundError,
    ValidationError,
)

# -- errors --------------------------------------------------------------------------------


class UnknownOrganisationError(NotFoundError):
    """No such organisation (or not one the caller may see)."""

    code = "unknown-organisation"


class UnknownUserError(NotFoundError):
    """No such directory user (or not one the caller may see)."""

    code = "unknown-user"


class UnknownGroupError(NotFoundError):
    """No such group (or not one the caller may see)."""

    code = "unknown-group"


class UnknownInvitationError(NotFoundError):
    """No such invitation (or not one the caller may see)."""

    code = "unknown-invitation"


class UnknownAffiliationError(NotFoundError):
    """No such affiliation (or not one the caller may see)."""

    code = "unknown-affiliation"


class UnknownDeviceError(NotFoundError):
    """No such device of this user."""

    code = "unknown-device"


class ReadOnlyError(ForbiddenError):
    """The caller may only read (auditors), or the act is for system administrators."""

    code = "forbidden"


class SyncedFieldError(ReadOnlyError):
    """The field is filled by the organisation's directory sync: change it in the directory."""

    code = "synced-field"

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


class InvalidFieldError(ValidationError):
    """A field's value is not valid; ``field`` names it (the form's field name)."""

    code = "invalid-field"

    def __init__(self, field_name: str, message: str, *, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.field = field_name


class InvalidEmailError(InvalidFieldError):
    """An e-mail address is malformed; for a typed list, nothing was sent."""

    code = "invalid-email"

    def __init__(self, address: str, message: str | None = None) -> None:
        super().__init__("email", message or INVALID_EMAIL.format(address=address))
        self.address = address


class PinPolicyError(InvalidFieldError):
    """A PIN breaks the organisation's policy (length, digits, trivial values)."""

    code = "weak-pin"

    def __init__(self, message: str) -> None:
        super().__init__("pin", message)


class CsvError(ValidationError):
    """A CSV file cannot be read at all (no header, no Email/Department column, too big)."""

    code = "invalid-csv"


class EmailTakenError(ConflictError):
    """Another user (or invitation being registered) has this e-mail address."""

    code = "email-taken"


class LoginTakenError(ConflictError):
    """The login is taken (an account, or a kept USERS record, has it)."""

    code = "login-taken"


class NameTakenError(ConflictError):
    """An organisation or group of that name exists."""

    code = "name-taken"


class AffiliationConflictError(ConflictError):
    """The affiliation is refused: self, already active, or a practice creating practices."""

    code = "affiliation-refused"


class CommunityError(ValidationError):
    """A community holds organisations, never other communities."""

    code = "not-a-community"


class LastAdminError(ConflictError):
    """An organisation must keep at least one administrator."""

    code = "last-admin"


class LinkGoneError(GoneError):
    """A mailed link (invitation, PIN reset, affiliation) is unknown, used, deleted or expired.

    ``reason`` says which, for the audit trail; people see :data:`LINK_GONE`.
    """

    code = "link-gone"

    def __init__(self, reason: str) -> None:
        super().__init__(LINK_GONE)
        self.reason = reason


class WrongPinError(CarewireError):
    """The PIN given is not the user's (counted toward the account lockout)."""

    code = "wrong-pin"


class AccountRefusedError(CarewireError):
    """The account may not use its PIN now: locked, delayed or disabled (``reason``)."""

    code = "account-refused"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class InvalidTransitionError(CarewireError):
    """An invitation cannot take this event in its status (:data:`INVITATION_TRANSITIONS`)."""

    code = "invalid-transition"

"""Reading and showing the user profile form (Create User Profile, Update User Profile).

The form's field names are the profile's attribute names, so a refusal's
``field`` (from the directory service) marks the right input. Physician
fields travel with the form even while the user is Non-Physician (hidden),
so converting back restores them, as the plan asks.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import asdict

from carewire.directory.model import (
    PHOTO_MAX,
    DirectoryUser,
    InvalidFieldError,
    Profile,
    StaffType,
)
from carewire.errors import ValidationError
from carewire.security.console_auth import check_password
from carewire.web.console.directory.common import Upload, text

#: The profile's text fields, in the form's order.
BASIC = ("title", "first_name", "last_name", "middle_name", "credentials", "job_title")
CONTACT = ("email", "cell_number", "time_zone")
OFFICE = ("address1", "address2", "city", "state", "zip", "office_phone", "office_fax")
PHYSICIAN = (
    "specialty",
    "medical_school",
    "residency",
    "fellowship",
    "practice_description",
    "home_page_url",
)
PROFILE_FIELDS = (*BASIC, *CONTACT, *OFFICE, *PHYSICIAN, "staff_type")
#: Other fields of the form, shown again when it is refused.
OTHER_FIELDS = ("login", "pin_is_temporary", "can_login")

STAFF_TYPES: tuple[tuple[str, str], ...] = (
    (StaffType.PHYSICIAN.value, "Physician"),
    (StaffType.NON_PHYSICIAN.value, "Non-Physician"),
)
#: The images a profile photo may be (the directory's list).
PHOTO_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


def profile_of(form: Mapping[str, object], *, photo: str = "", photo_type: str = "") -> Profile:
    """The profile a form sent (checked by the directory service when saved).

    Raises:
        InvalidFieldError: An unknown staff type.
    """
    values = {name: text(form, name) for name in PROFILE_FIELDS if name != "staff_type"}
    staff = text(form, "staff_type") or StaffType.PHYSICIAN.value
    if staff not in {s.value for s in StaffType}:
        raise InvalidFieldError("staff_type", "Choose Physician or Non-Physician.")
    return Profile(
        **values,
        staff_type=StaffType(staff),
        photo=photo,
        photo_type=photo_type,
    )


def profile_values(user: DirectoryUser) -> dict[str, str]:
    """What the Update form shows for a user."""
    p = asdict(user.profile)
    values = {name: str(p.get(name, "")) for name in PROFILE_FIELDS}
    values["staff_type"] = user.profile.staff_type.value
    values["login"] = user.login
    values["pin_is_temporary"] = "yes" if user.pin_is_temporary else "no"
    values["can_login"] = "locked" if user.is_locked else ("yes" if user.can_login else "no")
    return values


def sent_values(form: Mapping[str, object]) -> dict[str, str]:
    """The form as sent (secrets left out), to show a refused form again."""
    return {name: text(form, name) for name in (*PROFILE_FIELDS, *OTHER_FIELDS)}


def photo_of(
    form: Mapping[str, object], upload: Upload | None, current: Profile
) -> tuple[str, str]:
    """The photo to keep (base64, type): a new upload, removed, or the current one.

    Raises:
        InvalidFieldError: Not an image the directory keeps, or too large.
    """
    if text(form, "remove_photo") == "on":
        return "", ""
    if upload is None:
        return current.photo, current.photo_type
    limit = PHOTO_MAX * 3 // 4
    if len(upload.data) > limit:
        raise InvalidFieldError("photo", f"The photo is larger than {limit // 1024} KB.")
    kind = upload.content_type.lower()
    if kind not in PHOTO_TYPES:
        raise InvalidFieldError("photo", "The photo must be a PNG, JPEG, GIF or WebP image.")
    return base64.b64encode(upload.data).decode("ascii"), kind


def photo_bytes(profile: Profile) -> bytes | None:
    """The stored photo's bytes (None when there is none or it cannot be read)."""
    if not profile.photo:
        return None
    try:
        return base64.b64decode(profile.photo, validate=False)
    except (binascii.Error, ValueError):
        return None


def check_password_pair(form: Mapping[str, object]) -> str | None:
    """The new password, if one was typed (None: unchanged).

    Raises:
        InvalidFieldError: Too short (the console's rule), or the confirmation differs.
    """
    password = text(form, "password")
    if not password:
        return None
    try:
        check_password(password)
    except ValidationError as exc:
        raise InvalidFieldError("password", exc.message) from None
    if password != text(form, "password_confirm"):
        raise InvalidFieldError("password_confirm", "The two passwords differ.")
    return password

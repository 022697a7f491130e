"""Reading and showing the LDAP settings form of the Integrations page (docs/ldap.md).

The form's field names are the names a refusal (``LdapSettingsError.field``)
uses: ``url``, ``bind_dn``, ``base_dn``…, ``map_<profile field>`` for the
attribute of each profile field, ``map_external_id`` and ``map_login``. The
bind password is **write-only**: the form never carries the saved one (only
whether one is saved), and an empty field keeps it.
"""

from __future__ import annotations

from collections.abc import Mapping

from carewire.identity.ldap.model import (
    PRESET_FILTERS,
    PRESETS,
    REQUIRED_FIELDS,
    AttributeMap,
    LdapSettings,
    LdapSettingsError,
    StampKind,
)
from carewire.web.console.directory.common import text

#: (profile field, label) of the attribute mapping, in the profile form's order.
PROFILE_LABELS: tuple[tuple[str, str], ...] = (
    ("email", "Email"),
    ("first_name", "First Name"),
    ("last_name", "Last Name"),
    ("middle_name", "Middle Name"),
    ("title", "Title"),
    ("credentials", "Credentials"),
    ("job_title", "Job Title"),
    ("cell_number", "Cell (Private)"),
    ("office_phone", "Office Phone"),
    ("office_fax", "Office Fax"),
    ("address1", "Address 1"),
    ("city", "City"),
    ("state", "State"),
    ("zip", "Zip"),
)
#: Mapped fields an integration cannot do without.
REQUIRED = frozenset(REQUIRED_FIELDS)
#: (value, label) of the change-stamp select.
STAMPS: tuple[tuple[str, str], ...] = (
    (StampKind.MODIFY_TIMESTAMP.value, "modifyTimestamp (OpenLDAP and most servers)"),
    (StampKind.USN_CHANGED.value, "uSNChanged (Active Directory)"),
    (StampKind.NONE.value, "None: every run is full"),
)
#: (value, label) of the server kinds whose defaults a new integration may start from.
PRESET_CHOICES: tuple[tuple[str, str], ...] = (
    ("openldap", "OpenLDAP and other LDAP servers"),
    ("active-directory", "Active Directory"),
)
#: The plain text fields, as the settings name them.
TEXT_FIELDS = (
    "url",
    "bind_dn",
    "base_dn",
    "user_filter",
    "group_base_dn",
    "group_filter",
    "group_name_attribute",
    "group_member_attribute",
    "ca_file",
)
#: Every field of the form but the password (what a refused form shows again).
FORM_FIELDS = (
    *TEXT_FIELDS,
    "map_external_id",
    "map_login",
    "stamp",
    *(f"map_{name}" for name, _ in PROFILE_LABELS),
    "is_sync_enabled",
    "is_sign_in_enabled",
    "max_disable_percent",
)


def _mapping_values(mapping: AttributeMap) -> dict[str, str]:
    values = {
        "map_external_id": mapping.external_id,
        "map_login": mapping.login,
        "stamp": mapping.stamp.value,
    }
    for name, _ in PROFILE_LABELS:
        values[f"map_{name}"] = mapping.profile.get(name, "")
    return values


def settings_values(settings: LdapSettings | None, preset: str = "") -> dict[str, str]:
    """What the form shows: the saved settings, or a new integration's defaults.

    ``preset`` (``openldap``, ``active-directory``) picks the defaults of a new one.
    """
    if settings is None:
        kind = preset if preset in PRESETS else "openldap"
        user_filter, group_filter = PRESET_FILTERS[kind]
        settings = LdapSettings(
            organisation_id=0,
            url="",
            bind_dn="",
            base_dn="",
            user_filter=user_filter,
            group_filter=group_filter,
            mapping=PRESETS[kind],
        )
    values = {name: str(getattr(settings, name)) for name in TEXT_FIELDS}
    values.update(_mapping_values(settings.mapping))
    values["is_sync_enabled"] = "on" if settings.is_sync_enabled else ""
    values["is_sign_in_enabled"] = "on" if settings.is_sign_in_enabled else ""
    values["max_disable_percent"] = str(settings.max_disable_percent)
    return values


def sent_values(form: Mapping[str, object]) -> dict[str, str]:
    """The form as sent, without the password (to show a refused form again)."""
    return {name: text(form, name) for name in FORM_FIELDS}


def _percent(value: str) -> int:
    value = value.strip().rstrip("%").strip()
    if not value.isdigit() or len(value) > 3:
        raise LdapSettingsError(
            "max_disable_percent", "The mass-disable limit is a whole percentage, 0 to 100."
        )
    return int(value)


def _stamp(value: str) -> StampKind:
    if value not in {v for v, _ in STAMPS}:
        raise LdapSettingsError("stamp", "Choose a change stamp from the list.")
    return StampKind(value)


def settings_of(form: Mapping[str, object], organisation_id: int) -> LdapSettings:
    """The settings a form sent (checked by the LDAP service when saved).

    Raises:
        LdapSettingsError: The mass-disable limit is not a number, or an unknown stamp.
    """
    mapping = AttributeMap(
        external_id=text(form, "map_external_id").strip(),
        login=text(form, "map_login").strip(),
        stamp=_stamp(text(form, "stamp")),
        profile={name: text(form, f"map_{name}").strip() for name, _ in PROFILE_LABELS},
    )
    return LdapSettings(
        organisation_id=organisation_id,
        url=text(form, "url"),
        bind_dn=text(form, "bind_dn"),
        base_dn=text(form, "base_dn"),
        user_filter=text(form, "user_filter"),
        group_base_dn=text(form, "group_base_dn"),
        group_filter=text(form, "group_filter"),
        group_name_attribute=text(form, "group_name_attribute").strip(),
        group_member_attribute=text(form, "group_member_attribute").strip(),
        ca_file=text(form, "ca_file").strip(),
        mapping=mapping,
        is_sync_enabled=text(form, "is_sync_enabled") == "on",
        is_sign_in_enabled=text(form, "is_sign_in_enabled") == "on",
        max_disable_percent=_percent(text(form, "max_disable_percent")),
    )


def secret_of(form: Mapping[str, object]) -> str | None:
    """The bind password typed (None: keep the saved one)."""
    return text(form, "bind_secret") or None

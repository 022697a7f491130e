"""Identity integration: the organisation directory kept in step with external directories.

LDAP / Active Directory sync and sign-in (``ldap/``, docs/ldap.md) and SCIM 2.0
provisioning (``scim/``, docs/scim.md).
"""

"""Directory sync from LDAP / Active Directory and LDAP sign-in (docs/ldap.md)."""

"""Identity integration: provisioning the organisation directory from outside (docs/scim.md)."""

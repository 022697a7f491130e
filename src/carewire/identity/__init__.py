"""Identity integrations: the organisation directory kept in step with external directories."""

"""The rules engine: rules on datasets that make adapters act."""

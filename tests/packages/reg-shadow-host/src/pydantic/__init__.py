"""Shadows the host's pydantic: a package installing this must be refused, not imported."""

raise ImportError("reg-shadow-host's own pydantic was imported in place of the host's")

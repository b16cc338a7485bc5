"""Names every layer shares: the tenant used when none is given, the package of embedded workflows.

A module of its own (no imports) so that the host's defaults and the CLI read them without loading
pydantic and the rest of the kit.
"""

from __future__ import annotations

#: The tenant used when none is given.
DEFAULT_TENANT = "public"
#: The package name of a workflow handed to the runner directly (not from an installed or registered package).
EMBEDDED_PACKAGE = "embedded"

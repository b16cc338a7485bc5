"""A plugin whose import fails, as when one of its dependencies is not installed."""

from __future__ import annotations

import cloacina_test_missing_dependency  # noqa: F401  # not installed anywhere: importing this module fails

workflow = None

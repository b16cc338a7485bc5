"""ETL toolkit: two Cloacina workflows offered by one distribution.

- ``sales_rollup``: load orders, total them by region and by product in parallel (fan-out), then
  summarise both totals (fan-in).
- ``csv_cleanup``: parse CSV text, drop invalid rows, normalise the rest.

The host finds both through a single entry point naming ``etl_toolkit.plugin``, whose ``@hookimpl``
``cloacina_workflows()`` returns them.
"""

from __future__ import annotations

from .cleanup import csv_cleanup
from .sales import sales_rollup

__all__ = ["csv_cleanup", "sales_rollup"]

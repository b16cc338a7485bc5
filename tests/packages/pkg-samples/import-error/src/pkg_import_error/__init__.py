from __future__ import annotations

raise RuntimeError("pkg_import_error refuses to import: SAMPLE-IMPORT-FAILURE")

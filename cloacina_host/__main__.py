"""``python -m cloacina_host`` is ``cloacina-ctl``."""

from cloacina_host.cli import run_main

run_main()

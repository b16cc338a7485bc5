"""Events: the engine calls the ``cloacina_*`` hooks of every observer plugin, each in isolation.

Calling the hook the usual way (``pm.hook.cloacina_task_started(...)``) would stop at the first
observer that raises. Here each implementation is called on its own; one that raises is logged
with its plugin name, and neither the other observers nor the execution notice.
"""

from __future__ import annotations

import logging
from typing import Any

import pluggy

log = logging.getLogger("cloacina_host.events")


class EventEmitter:
    """Calls the event hooks registered on ``plugin_manager``."""

    def __init__(self, plugin_manager: pluggy.PluginManager) -> None:
        self.plugin_manager = plugin_manager

    def observed(self, hook_name: str) -> bool:
        """Whether any observer implements ``hook_name`` (to skip building an event nobody hears)."""
        return bool(getattr(self.plugin_manager.hook, hook_name).get_hookimpls())

    def emit(self, hook_name: str, **kwargs: Any) -> None:
        caller = getattr(self.plugin_manager.hook, hook_name)
        impls = caller.get_hookimpls()
        if not impls:
            return
        if any(impl.hookwrapper or impl.wrapper for impl in impls):
            # wrappers need pluggy's own call loop; isolate the whole call instead of each observer
            try:
                caller(**kwargs)
            except Exception:
                log.exception("an observer of %s raised; the execution goes on", hook_name)
            return
        for impl in reversed(impls):  # pluggy's order: last registered first
            try:
                impl.function(*[kwargs[name] for name in impl.argnames])
            except Exception:
                log.exception(
                    "observer %r raised in %s; ignored, the execution goes on (fix the plugin's hook)",
                    impl.plugin_name,
                    hook_name,
                )

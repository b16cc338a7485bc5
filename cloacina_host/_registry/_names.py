"""The names a user types: tenants, package names, versions, ``NAME==VERSION``; checked whole.

Every check is a ``fullmatch`` of a pattern without anchors (``re.match`` with ``$`` accepts a trailing
newline), with a length cap, so a name that passes is safe as a schema name, a file name and a
word in a message. What is refused gets one message naming what is allowed.
"""

from __future__ import annotations

import re

from .._errors import shown
from .._storage._tenants import TENANT_NAME, TENANT_NAME_MAX, check_tenant_name
from ._errors import RegistryError

__all__ = [
    "TENANT_NAME",
    "TENANT_NAME_MAX",
    "check_package_name",
    "check_tenant_name",
    "check_version",
    "parse_requirement",
    "shown",
]

#: A distribution name (PEP 508), as in the manifest; any spelling (``REG_swap``) normalises to one.
PACKAGE_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?")
PACKAGE_NAME_MAX = 200
#: A version as typed after ``==``: PEP 440 characters (local versions included), as in the manifest.
VERSION = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.+!_-]*[A-Za-z0-9])?")
VERSION_MAX = 100


def check_package_name(name: str) -> str:
    """``name`` if it can name a distribution; else ``RegistryError``."""
    if not isinstance(name, str) or len(name) > PACKAGE_NAME_MAX or not PACKAGE_NAME.fullmatch(name):
        raise RegistryError(
            f"Package name {shown(name)} is not a distribution name: use up to {PACKAGE_NAME_MAX} letters, "
            "digits, '.', '_' and '-', starting and ending with a letter or digit, e.g. simple-packaged-demo "
            "(see `cloacina-ctl packages list`)."
        )
    return name


def check_version(version: str, *, name: str = "") -> str:
    """``version`` if it can be a registered version; else ``RegistryError``."""
    if not isinstance(version, str) or len(version) > VERSION_MAX or not VERSION.fullmatch(version):
        what = f" of {name}" if name else ""
        raise RegistryError(
            f"Version {shown(version)}{what} is not a version: use up to {VERSION_MAX} letters, digits and "
            "'.', '+', '!', '_', '-', e.g. 1.0.0 (see `cloacina-ctl packages show NAME`)."
        )
    return version


def parse_requirement(text: str) -> tuple[str, str]:
    """``NAME==VERSION`` → ``(NAME, VERSION)``; ``RegistryError`` for anything else.

    Spaces around either part are allowed; control characters, a second ``==`` and the like are not.
    """
    name, sep, version = text.partition("==")
    name, version = name.strip(" "), version.strip(" ")
    if not sep or not name or not version:
        raise RegistryError(
            f"{shown(text)} does not name a version: write NAME==VERSION, e.g. simple-packaged-demo==1.0.0."
        )
    return check_package_name(name), check_version(version, name=name)

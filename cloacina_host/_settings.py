"""Where Cloacina keeps its files and which database it uses."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "CLOACINA_HOME"
DATABASE_URL_ENV = "CLOACINA_DATABASE_URL"


def cloacina_home(home: str | os.PathLike[str] | None = None) -> Path:
    """``home``, else ``$CLOACINA_HOME``, else ``~/.cloacina``."""
    if home is not None:
        return Path(home).expanduser()
    env = os.environ.get(HOME_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cloacina"


def default_database_url(home: str | os.PathLike[str] | None = None) -> str:
    """``$CLOACINA_DATABASE_URL``, else a SQLite file under the Cloacina home."""
    env = os.environ.get(DATABASE_URL_ENV)
    if env:
        return env
    return f"sqlite:///{cloacina_home(home) / 'cloacina.db'}"

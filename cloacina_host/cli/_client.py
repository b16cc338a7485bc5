"""The command line as a client of ``cloacina-ctl server``: ``--server URL`` (env ``CLOACINA_SERVER``).

Commands that support it (``register``, ``packages``, ``workflows list``, ``run``, ``executions``,
``schedules``, ``triggers``) get the same JSON views from the server's API (``/api/v1``) that they
build from the database otherwise, and print them with the same renderers. The key is
``CLOACINA_API_KEY`` (or ``--api-key``); it decides the tenant. ``httpx`` is imported on first use.

Every HTTP refusal becomes one ``ServerError`` carrying the server's message (the command line's
own) and an exit status: the one the server names (1 bad input or a refused state, 3 not found), 1
for a missing, wrong or revoked key (401) or a role that does not allow the command (403), 2 when
the server cannot be reached, times out or fails (5xx).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from .._errors import EXIT_INFRASTRUCTURE, EXIT_NOT_FOUND, EXIT_USER_ERROR, HostError, UsageError

if TYPE_CHECKING:
    import httpx

__all__ = ["COVERED", "Client", "ServerError", "connect", "path", "query"]

#: the commands ``--server`` applies to (shown in ``--help``)
COVERED = "register, packages, workflows list, run, executions, schedules, triggers"
#: seconds to connect, and for the server to answer (a register loads the package in a fresh worker)
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 300.0
KEY_FIX = "Set CLOACINA_API_KEY to a key from `cloacina-ctl api-keys create --tenant T --role read|write|admin`."


class ServerError(HostError):
    """The server refused the request, or could not be reached; ``exit_status`` says which."""

    def __init__(self, message: str, exit_status: int, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.exit_status = exit_status
        self.status_code = status_code


def path(*parts: str) -> str:
    """``/api/v1/PART/PART``, each part quoted (a name with ``/`` or ``::`` stays one segment)."""
    return "/api/v1/" + "/".join(quote(p, safe="") for p in parts)


@dataclass
class Client:
    """One server, one key: requests, and their failures as ``ServerError``."""

    url: str
    key: str
    _http: httpx.Client | None = field(default=None, repr=False)

    def _client(self) -> httpx.Client:
        if self._http is None:
            import httpx

            self._http = httpx.Client(
                base_url=self.url,
                headers={"Authorization": f"Bearer {self.key}", "User-Agent": "cloacina-ctl"},
                timeout=httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
            )
        return self._http

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        """The JSON body of a successful answer; ``ServerError`` otherwise."""
        import httpx

        try:
            response = self._client().request(method, url, **kwargs)
        except httpx.TimeoutException:
            raise ServerError(
                f"The Cloacina server at {self.url} did not answer {method} {url} in time. "
                "Check that `cloacina-ctl server` runs there and is not overloaded.",
                EXIT_INFRASTRUCTURE,
            ) from None
        except httpx.TransportError as exc:
            raise ServerError(
                f"Cannot reach the Cloacina server at {self.url}: {exc or type(exc).__name__}. "
                "Check --server (or CLOACINA_SERVER) and that `cloacina-ctl server` runs there.",
                EXIT_INFRASTRUCTURE,
            ) from exc
        if response.is_success:
            return response.json()
        raise self._refusal(response)

    def get(self, url: str, **params: Any) -> Any:
        return self.request("GET", url, params=query(params))

    def post(self, url: str, body: Any = None, **params: Any) -> Any:
        return self.request("POST", url, json=body, params=query(params))

    def delete(self, url: str, **params: Any) -> Any:
        return self.request("DELETE", url, params=query(params))

    def _refusal(self, response: httpx.Response) -> ServerError:
        code = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        message = body.get("error") if isinstance(body, dict) else None
        if not isinstance(message, str):
            message = f"{response.reason_phrase or 'error'} ({response.text[:200].strip() or 'no body'})"
        if code == 401:
            return ServerError(f"{message} {KEY_FIX} (server {self.url})", EXIT_USER_ERROR, status_code=code)
        if code == 403:
            return ServerError(
                f"{message} Use a key of a role that allows it (`cloacina-ctl api-keys create ... --role write` "
                "or admin) in CLOACINA_API_KEY.",
                EXIT_USER_ERROR,
                status_code=code,
            )
        if code >= 500:
            return ServerError(
                f"The Cloacina server at {self.url} failed: {message}", EXIT_INFRASTRUCTURE, status_code=code
            )
        if code == 404:
            return ServerError(message, EXIT_NOT_FOUND, status_code=code)
        stated = body.get("exit_status") if isinstance(body, dict) else None
        exit_status = stated if stated in (EXIT_USER_ERROR, EXIT_NOT_FOUND) else EXIT_USER_ERROR
        return ServerError(message, exit_status, status_code=code)

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None


def query(params: dict[str, Any]) -> dict[str, Any]:
    """Query parameters without the unset ones; booleans as ``true``/``false``."""
    return {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in params.items() if v is not None}


def connect(url: str, key: str | None, *, tenant: str | None) -> tuple[Client, str]:
    """A client of the server at ``url`` and the key's tenant (``whoami``); ``tenant``, when the user chose
    one, must be the key's."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(
            f"--server {url!r} is not a server address: give http://HOST:PORT (or https://...), "
            "where `cloacina-ctl server` listens."
        )
    if not key:
        raise UsageError(f"--server {url} needs an API key. {KEY_FIX}")
    client = Client(url.rstrip("/"), key)
    try:
        key_tenant = str(client.get(path("whoami"))["tenant"])
    except BaseException:
        client.close()
        raise
    if tenant is not None and tenant != key_tenant:
        client.close()
        raise UsageError(
            f"--tenant {tenant!r} is not the tenant of the API key ({key_tenant!r}): through --server the key "
            f"decides the tenant. Drop --tenant (and CLOACINA_TENANT), or use a key of tenant {tenant!r}."
        )
    return client, key_tenant

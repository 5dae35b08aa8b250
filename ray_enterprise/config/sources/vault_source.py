"""Vault (or OpenBao) KV v2: where secrets live, read through hvac.

Each secret under ``path_prefix`` is one subtree: ``<prefix>/security`` holding
``{"jwt_secret": ...}`` sets ``security.jwt_secret``; ``<prefix>/services/search`` sets
``services.search``. Changes are found by listing the prefix and comparing each secret's
metadata ``current_version``, so unchanged secrets are never read again.

Tokens expire. :class:`TokenLease` decides, from the lease and an injected clock, when to renew
(a third of the lease before expiry) and when renewing no longer helps because the token hit its
max TTL, at which point AppRole or Kubernetes auth logs in again; a static token can only be
reported as failing. Kubernetes auth logs in with the pod's service-account token, read from its
file at every login because the kubelet rotates that file (projected tokens last an hour).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from typing import Any, Literal, TypeVar

import hvac
from hvac.exceptions import Forbidden, InternalServerError, InvalidPath, InvalidRequest

from ray_enterprise.config.errors import ConfigSourceError
from ray_enterprise.config.merge import deep_merge
from ray_enterprise.config.sources.base import Clock, ConfigSource, log

Action = Literal["ok", "renew", "relogin"]
T = TypeVar("T")

#: Where Kubernetes mounts a pod's service-account token.
SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"


@dataclass(frozen=True)
class TokenLease:
    """A token's lease as last seen: it expires at ``expires_at`` (``None``: never, e.g. root).

    ``period`` is the lease length the token is normally granted; renewal starts in its last
    ``renew_fraction``. ``capped`` records that the last renewal granted less than asked, i.e.
    the token reached its max TTL and only a new login extends access.
    """

    expires_at: float | None
    period: float
    renewable: bool
    capped: bool = False
    renew_fraction: float = 1 / 3
    #: Act at least this long before expiry (the poll interval), so no poll finds it expired.
    margin: float = 0.0

    @classmethod
    def granted(cls, ttl: float, now: float, *, renewable: bool, margin: float = 0.0) -> TokenLease:
        """The lease of a token just issued or looked up with ``ttl`` seconds left."""
        expires = None if ttl <= 0 else now + ttl
        return cls(expires_at=expires, period=ttl, renewable=renewable, margin=margin)

    def action(self, now: float) -> Action:
        """What to do before the next request at time ``now``."""
        if self.expires_at is None:
            return "ok"
        if self.expires_at - now > max(self.period * self.renew_fraction, self.margin):
            return "ok"
        if self.renewable and not self.capped and now < self.expires_at:
            return "renew"
        return "relogin"

    def renewed(self, granted: float, now: float) -> TokenLease:
        """The lease after a renewal that granted ``granted`` seconds of the usual period."""
        return replace(self, expires_at=now + granted, capped=granted < self.period * 0.9)


class VaultConfigSource(ConfigSource):
    """KV v2 secrets under ``mount``/``path_prefix``; token, AppRole (``role_id``) or Kubernetes
    (``kubernetes_role``, with the service-account token at ``kubernetes_jwt_path``) auth."""

    layer = "vault"

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        role_id: str | None = None,
        secret_id: str | None = None,
        approle_mount: str = "approle",
        kubernetes_role: str | None = None,
        kubernetes_jwt_path: str = SERVICE_ACCOUNT_TOKEN,
        kubernetes_mount: str = "kubernetes",
        mount: str = "secret",
        path_prefix: str = "ray_enterprise",
        namespace: str | None = None,
        timeout: float = 3.0,
        verify: bool | str = True,
        poll_interval: float = 1.0,
        name: str = "vault",
        clock: Clock = time.time,
    ) -> None:
        super().__init__(name=name, poll_interval=poll_interval, clock=clock)
        if not token and not role_id and not kubernetes_role:
            raise ValueError(
                "VaultConfigSource needs a token, an AppRole role_id/secret_id or a kubernetes_role"
            )
        if role_id and kubernetes_role:
            raise ValueError("VaultConfigSource takes AppRole or Kubernetes auth, not both")
        self.url = url
        self.mount = mount
        self.path_prefix = path_prefix.strip("/")
        self.approle_mount = approle_mount
        self.kubernetes_role = kubernetes_role
        self.kubernetes_jwt_path = kubernetes_jwt_path
        self.kubernetes_mount = kubernetes_mount
        self._token = token
        self._role_id = role_id
        self._secret_id = secret_id
        self._client = hvac.Client(
            url=url, token=token, namespace=namespace, timeout=timeout, verify=verify
        )
        self._lease: TokenLease | None = None
        # Renew two polls ahead of the deadline so that no poll finds the token expired.
        self._margin = 2 * poll_interval
        #: How often this source logged in and renewed, for status pages and tests.
        self.login_count = 0
        self.renew_count = 0
        self._cache: dict[str, tuple[tuple[int, str], dict[str, Any]]] = {}
        self._versions: dict[str, tuple[int, str]] = {}

    def __repr__(self) -> str:  # never the token
        return f"VaultConfigSource(url={self.url!r}, mount={self.mount!r}, ok={self._health.ok})"

    @property
    def lease(self) -> TokenLease | None:
        return self._lease

    # -- the source vocabulary ---------------------------------------------------------------

    async def _probe(self) -> Hashable:
        return await asyncio.to_thread(self._probe_sync)

    async def _read(self) -> dict[str, Any]:
        return await asyncio.to_thread(self._read_sync)

    def _probe_sync(self) -> tuple[tuple[str, tuple[int, str]], ...]:
        self._versions = self._with_auth(self._current_versions)
        return tuple(sorted(self._versions.items()))

    def _read_sync(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        cache: dict[str, tuple[tuple[int, str], dict[str, Any]]] = {}
        for rel, version in sorted(self._versions.items()):
            cached = self._cache.get(rel)
            if cached and cached[0] == version:
                data = cached[1]
            else:
                data = self._with_auth(functools.partial(self._read_secret, rel))
            cache[rel] = (version, data)
            out = deep_merge(out, _nest(rel, data))
        self._cache = cache
        return out

    # -- KV v2 -------------------------------------------------------------------------------

    def _current_versions(self) -> dict[str, tuple[int, str]]:
        # A version number alone is not an identity: a server rebuilt from scratch and written
        # again starts over at version 1. Its creation time tells the two apart.
        versions: dict[str, tuple[int, str]] = {}
        for rel in self._list(""):
            meta = self._client.secrets.kv.v2.read_secret_metadata(
                path=self._full(rel), mount_point=self.mount
            )["data"]
            current = int(meta.get("current_version") or 0)
            info = (meta.get("versions") or {}).get(str(current)) or {}
            if current and not info.get("deletion_time") and not info.get("destroyed"):
                versions[rel] = (current, str(info.get("created_time", "")))
        return versions

    def _list(self, rel: str) -> list[str]:
        try:
            keys = self._client.secrets.kv.v2.list_secrets(
                path=self._full(rel), mount_point=self.mount
            )["data"]["keys"]
        except InvalidPath:
            return []  # nothing stored under the prefix yet: an empty layer, not a failure
        found: list[str] = []
        for key in keys:
            child = f"{rel}/{key}".strip("/") if rel else key.strip("/")
            found.extend(self._list(child) if key.endswith("/") else [child])
        return found

    def _read_secret(self, rel: str) -> dict[str, Any]:
        try:
            resp = self._client.secrets.kv.v2.read_secret_version(
                path=self._full(rel), mount_point=self.mount, raise_on_deleted_version=False
            )
        except InvalidPath:
            return {}
        data = (resp.get("data") or {}).get("data")
        return dict(data) if isinstance(data, dict) else {}

    def _full(self, rel: str) -> str:
        return "/".join(p for p in (self.path_prefix, rel) if p)

    # -- tokens ------------------------------------------------------------------------------

    def _with_auth(self, call: Callable[[], T]) -> T:
        """Run ``call`` with a valid token, logging in again once if the token was refused."""
        self._ensure_token()
        try:
            return call()
        except Forbidden:
            if not self._logs_in:
                raise
            self._login()
            return call()

    def _ensure_token(self) -> None:
        now = self._clock()
        if self._lease is None:
            if self._logs_in:
                self._login()
            else:
                self._lookup()
            return
        action = self._lease.action(now)
        if action == "renew":
            asked = max(1, int(self._lease.period))
            try:
                resp = self._client.auth.token.renew_self(increment=asked)
            except (Forbidden, InternalServerError, InvalidRequest):
                # Past its max TTL the server refuses the renewal (OpenBao says so with a 500).
                action = "relogin"
            else:
                granted = float(resp["auth"]["lease_duration"])
                self._lease = self._lease.renewed(granted, self._clock())
                self.renew_count += 1
                log.debug("vault token renewed for %.0f s", granted)
        if action == "relogin":
            if self._logs_in:
                self._login()
                return
            # A static token cannot be replaced from here: use it while it lasts, then fail.
            expires = self._lease.expires_at
            if expires is not None and self._clock() >= expires:
                self._lease = None  # look it up again next time, in case it was extended
                raise ConfigSourceError(
                    self.name, "token expired; give a new token or use AppRole or Kubernetes auth"
                )

    @property
    def _logs_in(self) -> bool:
        """Whether this source can get a new token itself (else it holds a static one)."""
        return bool(self._role_id or self.kubernetes_role)

    def _login(self) -> None:
        if self.kubernetes_role:
            resp = self._kubernetes_login(self.kubernetes_role)
            method = "Kubernetes"
        else:
            resp = self._client.auth.approle.login(
                role_id=self._role_id, secret_id=self._secret_id, mount_point=self.approle_mount
            )
            method = "AppRole"
        auth = resp["auth"]
        self._lease = TokenLease.granted(
            float(auth.get("lease_duration") or 0),
            self._clock(),
            renewable=bool(auth.get("renewable")),
            margin=self._margin,
        )
        self.login_count += 1
        log.info("vault %s login for %s", method, self.name)

    def _kubernetes_login(self, role: str) -> dict[str, Any]:
        path = self.kubernetes_jwt_path
        try:
            with open(path, encoding="utf-8") as fh:
                jwt = fh.read().strip()
        except OSError as exc:
            raise ConfigSourceError(
                self.name,
                f"cannot read the Kubernetes service-account token {path}"
                f" (RAY_ENTERPRISE_VAULT_KUBERNETES_JWT_PATH): {exc.strerror or exc}."
                " Mount the pod's service-account token there or point the setting at it",
            ) from None
        try:
            resp: dict[str, Any] = self._client.auth.kubernetes.login(
                role=role, jwt=jwt, mount_point=self.kubernetes_mount
            )
        except (Forbidden, InvalidRequest) as exc:
            # Vault's reason ("permission denied", "invalid role name") and never the token:
            # the JWT is a credential of the pod, and this message reaches logs and alerts.
            reason = "; ".join(str(e) for e in (exc.errors or [])) or type(exc).__name__
            raise ConfigSourceError(
                self.name,
                f"Vault refused the Kubernetes login of role {role!r}"
                f" (RAY_ENTERPRISE_VAULT_KUBERNETES_ROLE) at auth/{self.kubernetes_mount}"
                f" with the service-account token from {path}: {reason.replace(jwt, '***')}."
                " Bind the role to this pod's service account and namespace, or fix the role",
            ) from None
        return resp

    def _lookup(self) -> None:
        data = self._client.auth.token.lookup_self()["data"]
        self._lease = TokenLease.granted(
            float(data.get("ttl") or 0),
            self._clock(),
            renewable=bool(data.get("renewable")),
            margin=self._margin,
        )

    # -- writing (tests, bootstrap tooling) --------------------------------------------------

    async def write(self, rel: str, data: dict[str, Any]) -> None:
        """Store ``data`` as the secret at ``<prefix>/<rel>``."""
        await asyncio.to_thread(
            self._with_auth,
            lambda: self._client.secrets.kv.v2.create_or_update_secret(
                path=self._full(rel), secret=data, mount_point=self.mount
            ),
        )


def _nest(rel: str, data: dict[str, Any]) -> dict[str, Any]:
    value: Any = data
    for part in reversed([p for p in rel.split("/") if p]):
        value = {part: value}
    return value if isinstance(value, dict) else {}

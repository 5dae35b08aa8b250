"""Real backends for the config integration tests: OpenBao, PostgreSQL URLs, a TCP proxy, and
the one Kubernetes API endpoint OpenBao's kubernetes auth calls (there is no cluster here).

Kept out of conftest.py under a unique name so tests can import these helpers directly.
Nothing here sleeps to synchronise: servers are polled until ready within a deadline.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import hvac
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from ray_enterprise.config.sources import ConfigSource, SourceUpdate
from tests.support import free_port, wait_for

REPO = Path(__file__).resolve().parents[3]
BAO = shutil.which("bao") or str(REPO / ".venv" / "bin" / "bao")
PG_DSN_ENV = "RAY_ENTERPRISE_TEST_PG_DSN"


class BaoServer:
    """``bao server -dev`` on a fixed loopback port; can be stopped and started again."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> BaoServer:
        self.proc = subprocess.Popen(
            [
                BAO,
                "server",
                "-dev",
                f"-dev-listen-address=127.0.0.1:{self.port}",
                "-dev-root-token-id=root",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "BAO_ADDR": self.url, "HOME": os.environ.get("HOME", "/tmp")},
        )
        client = self.client()

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"bao exited with {self.proc.returncode}")
            try:
                return bool(client.sys.is_initialized() and not client.sys.is_sealed())
            except Exception:
                return False

        wait_for(ready, timeout=15.0, what="bao dev server")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def client(self) -> hvac.Client:
        return hvac.Client(url=self.url, token="root", timeout=3)


class KubernetesApi:
    """The TokenReview endpoint of a Kubernetes API server, on a real HTTP server at 127.0.0.1.

    OpenBao's kubernetes auth reads the service account out of the JWT's claims, then asks the
    API server (``POST /apis/authentication.k8s.io/v1/tokenreviews``) whether the token is
    valid, and compares the answer's ``system:serviceaccount:NS:NAME`` with the claims. This
    server answers as the API server does: tokens it issued are authenticated, any other is
    not. It signs them RS256 with its own key, as the API server signs with its issuer key.
    """

    ISSUER = "https://kubernetes.default.svc.cluster.local"

    def __init__(self) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._issued: dict[str, tuple[str, str]] = {}
        self._serial = 0
        #: Every token a review was asked about, in order: tests check what was presented.
        self.reviewed: list[str] = []
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> KubernetesApi:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                review = json.loads(self.rfile.read(length) or b"{}")
                if self.path != "/apis/authentication.k8s.io/v1/tokenreviews":
                    self.send_error(404)
                    return
                token = str(review.get("spec", {}).get("token", ""))
                api.reviewed.append(token)
                body = json.dumps(api.review(token, review.get("spec", {}))).encode()
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def review(self, token: str, spec: dict[str, Any]) -> dict[str, Any]:
        who = self._issued.get(token)
        if who is None:
            status: dict[str, Any] = {"authenticated": False, "error": "invalid bearer token"}
        else:
            namespace, name = who
            status = {
                "authenticated": True,
                "user": {
                    "username": f"system:serviceaccount:{namespace}:{name}",
                    "uid": f"uid-{namespace}-{name}",
                    "groups": ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"],
                },
                "audiences": spec.get("audiences") or [self.ISSUER],
            }
        return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "status": status}

    def issue(self, namespace: str, name: str) -> str:
        """A service-account JWT the API server will vouch for (each one distinct)."""
        self._serial += 1
        now = int(time.time())
        claims = {
            "iss": self.ISSUER,
            "sub": f"system:serviceaccount:{namespace}:{name}",
            "aud": [self.ISSUER],
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "jti": f"jti-{self._serial}",
            "kubernetes.io": {
                "namespace": namespace,
                "serviceaccount": {"name": name, "uid": f"uid-{namespace}-{name}"},
            },
        }
        token = self.sign(claims)
        self._issued[token] = (namespace, name)
        return token

    def sign(self, claims: dict[str, Any]) -> str:
        """A JWT of ``claims`` signed with the API server's key, issued or not."""
        header = _b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "k1"}).encode())
        payload = _b64url(json.dumps(claims).encode())
        signature = self._key.sign(
            f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256()
        )
        return f"{header}.{payload}.{_b64url(signature)}"

    def ca_pem(self) -> str:
        """A CA certificate for OpenBao's ``kubernetes_ca_cert`` (required once the pod-local
        CA is disabled; unused over plain HTTP)."""
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes")])
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(1)
            .not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM).decode()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def pg_url(dsn: str, schema: str, *, port: int | None = None) -> str:
    """The DSN pointed at ``schema`` (and optionally another port, e.g. a proxy's)."""
    from sqlalchemy.engine import make_url

    url = make_url(dsn)
    if port is not None:
        url = url.set(host="127.0.0.1", port=port)
    text = url.render_as_string(hide_password=False)
    sep = "&" if "?" in text else "?"
    return f"{text}{sep}options={quote(f'-csearch_path={schema}')}"


class TcpProxy:
    """Forwards a loopback port to a target; ``stop`` cuts every connection, like an outage."""

    def __init__(self, target: tuple[str, int], port: int | None = None) -> None:
        self.target = target
        self.port = port or free_port()
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> TcpProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=3)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()


class Watching:
    """Runs ``source.watch()`` in a task and lets a test wait for an update it expects."""

    def __init__(self, source: ConfigSource) -> None:
        self.source = source
        self.updates: list[SourceUpdate] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Watching:
        self._task = asyncio.create_task(self._run())
        await asyncio.sleep(0)
        return self

    async def _run(self) -> None:
        async for update in self.source.watch():
            self.updates.append(update)

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self.source.close()

    async def until(
        self, predicate: Callable[[SourceUpdate], bool], timeout: float = 3.0
    ) -> tuple[SourceUpdate, float]:
        """The first update (from now on) that satisfies ``predicate``, and the wait it took."""
        start = time.monotonic()
        seen = len(self.updates)
        while True:
            for update in self.updates[seen:]:
                if predicate(update):
                    return update, time.monotonic() - start
            seen = len(self.updates)
            if self._task is not None and self._task.done():
                self._task.result()
            if time.monotonic() - start > timeout:
                raise AssertionError(f"no matching update within {timeout}s: {self.updates}")
            await asyncio.sleep(0.01)


def values_at(update: SourceUpdate, path: str) -> Any:
    node: Any = update.values
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node

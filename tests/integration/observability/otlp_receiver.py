"""An OTLP trace receiver on real loopback sockets, over HTTP/protobuf and over gRPC.

No OpenTelemetry Collector binary can be installed from PyPI or Debian here (the collector is
a Go program), so this stands in for one: it decodes every request with the official
``opentelemetry-proto`` messages, exactly as the collector's OTLP receiver does, and keeps
each span as (service.name of its resource, span name, trace id).
"""

from __future__ import annotations

import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

Span = tuple[str, str, str]


def _spans(request: Any) -> list[Span]:
    out: list[Span] = []
    for resource_spans in request.resource_spans:
        attrs = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
        service = attrs.get("service.name", "")
        for scope in resource_spans.scope_spans:
            out.extend((service, s.name, s.trace_id.hex()) for s in scope.spans)
    return out


class OtlpReceiver:
    """``http_url`` takes ``POST /v1/traces``; ``grpc_url`` serves the TraceService."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.received: dict[str, list[Span]] = {"http": [], "grpc": []}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                request = trace_service_pb2.ExportTraceServiceRequest()
                request.ParseFromString(body)
                receiver._add("http", _spans(request))
                reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *_args: Any) -> None:
                pass

        class Service(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request: Any, context: Any) -> Any:
                receiver._add("grpc", _spans(request))
                return trace_service_pb2.ExportTraceServiceResponse()

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http_url = f"http://127.0.0.1:{self._http.server_address[1]}"
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Service(), self._grpc)
        port = self._grpc.add_insecure_port("127.0.0.1:0")
        self.grpc_url = f"http://127.0.0.1:{port}"
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    def _add(self, protocol: str, spans: list[Span]) -> None:
        with self._lock:
            self.received[protocol].extend(spans)

    def spans(self, protocol: str) -> list[Span]:
        with self._lock:
            return list(self.received[protocol])

    def __enter__(self) -> OtlpReceiver:
        self._thread.start()
        self._grpc.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._grpc.stop(grace=None)

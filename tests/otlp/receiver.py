"""An OTLP/HTTP receiver for the telemetry tests (tests/e2e/telemetry.rs).

Decodes what the gateway exports with the official OpenTelemetry protobuf
definitions (the `opentelemetry-proto` package, pinned in requirements.txt)
and writes, into the directory it is given:
- spans.jsonl: one JSON line per span (ids in hex, attributes as a dict);
- metrics.jsonl: one JSON line per metric (its name and its points: each one's attributes, and its
  value under `_value`, a histogram's being its count);
- raw.bin: every request body as received, for the test's search for secrets;
- authorization.txt: each request's `authorization` header, one a line.
It prints `listening PORT` once it accepts requests (it binds port 0).

Usage: receiver.py OUT_DIR
"""

import gzip
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

OUT = sys.argv[1]


def value(any_value):
    """An AnyValue as a plain Python value."""
    kind = any_value.WhichOneof("value")
    return None if kind is None else getattr(any_value, kind)


def attributes(key_values):
    return {kv.key: value(kv.value) for kv in key_values}


def append(name, lines):
    with open(os.path.join(OUT, name), "a", encoding="utf-8") as out:
        for line in lines:
            out.write(json.dumps(line, default=str) + "\n")


def spans(body):
    request = ExportTraceServiceRequest.FromString(body)
    for resource_spans in request.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield {
                    "trace_id": span.trace_id.hex(),
                    "span_id": span.span_id.hex(),
                    "parent_span_id": span.parent_span_id.hex(),
                    "name": span.name,
                    "kind": span.kind,
                    "start": span.start_time_unix_nano,
                    "end": span.end_time_unix_nano,
                    "attributes": attributes(span.attributes),
                    "service": resource.get("service.name"),
                }


def metrics(body):
    request = ExportMetricsServiceRequest.FromString(body)
    for resource_metrics in request.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                points = getattr(metric, kind).data_points if kind else []
                yield {"name": metric.name, "kind": kind, "points": [point(kind, p) for p in points]}


def point(kind, data_point):
    """A point's attributes, and its value under `_value`: a sum's number, a histogram's count."""
    measured = data_point.count if kind == "histogram" else value_of(data_point)
    return {**attributes(data_point.attributes), "_value": measured}


def value_of(number_point):
    kind = number_point.WhichOneof("value")
    return None if kind is None else getattr(number_point, kind)


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        with open(os.path.join(OUT, "raw.bin"), "ab") as raw:
            raw.write(body)
        # The header the gateway's `[telemetry] header_secrets` sends.
        with open(os.path.join(OUT, "authorization.txt"), "a", encoding="utf-8") as seen:
            seen.write(self.headers.get("authorization", "") + "\n")
        if self.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        if self.path == "/v1/traces":
            append("spans.jsonl", spans(body))
            answer = ExportTraceServiceResponse()
        elif self.path == "/v1/metrics":
            append("metrics.jsonl", metrics(body))
            answer = ExportMetricsServiceResponse()
        else:
            self.send_error(404)
            return
        payload = answer.SerializeToString()
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(f"listening {server.server_address[1]}", flush=True)
server.serve_forever()

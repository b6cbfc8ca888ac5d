#!/usr/bin/env python3
"""An OTLP/JSON collector for SIS's tests: receives traces and metrics, checks each payload against the official
OpenTelemetry protobuf definitions, and reports what it received.

    collector.py serve [--port N] [--fail-first N] [--fail-status CODE]
        Listens on 127.0.0.1 (port 0: one the system picks) and prints `listening PORT` once it does.
        POST /v1/traces and POST /v1/metrics (Content-Type: application/json): 200 and `{}` when the payload
        passes every check, 400 and `{"code": 3, "message": ...}` when it does not; the first N requests are
        answered CODE (default 503) without being read, to test a sender's retries.
        GET /summary: what was received (see summary() below; docs/otel.md describes every field).
    collector.py check FILE
        The same checks on a file of JSON lines (one export request a line, as `otelctl file` writes them);
        prints the summary and exits 0, or prints the first error and exits 1.

Protobuf's JSON parser alone is too lenient to prove that a payload is OTLP/JSON: it accepts snake_case field
names, enum names, 64-bit integers as JSON numbers, and reads `bytes` fields as base64 while OTLP/JSON writes
trace and span ids in hex. So before parsing, this collector checks on the raw JSON that every field name is
lowerCamelCase, that ids are 32 (trace) and 16 (span) lowercase hex characters and not all zero, that 64-bit
integer fields are decimal strings and that enums are integers; it then turns the hex ids into base64 so that
`json_format.Parse` (unknown fields refused) reads them, and checks that each id read back is the one sent.
After parsing it checks what no schema says: histogram buckets (one more than bounds, adding up to the count,
bounds increasing); and over everything received, that span ids are unique, that every parent exists in the
same trace, and that a child's times lie within its parent's.
"""

import argparse
import base64
import json
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

CAMEL_CASE = re.compile(r"^[a-z][A-Za-z0-9]*$")
HEX = re.compile(r"^[0-9a-f]*$")
ID_CHARACTERS = {"traceId": 32, "spanId": 16, "parentSpanId": 16}
# Fields of type int64, uint64 or fixed64 (written as decimal strings), and of fixed64 lists.
INT64_FIELDS = {"startTimeUnixNano", "endTimeUnixNano", "timeUnixNano", "observedTimeUnixNano", "intValue",
                "asInt", "count"}
INT64_LIST_FIELDS = {"bucketCounts"}
ENUM_FIELDS = {"kind", "code", "aggregationTemporality", "severityNumber"}
KINDS = {"/v1/traces": "traces", "/v1/metrics": "metrics"}
# The top-level field of each kind of request.
ROOT_FIELDS = {"resourceSpans": "traces", "resourceMetrics": "metrics"}


class PayloadError(Exception):
    """A payload that is not valid OTLP/JSON; the message says where and why."""


def check_raw(value, path="$"):
    """Checks names, ids, 64-bit integers and enums on the raw JSON; returns a copy with ids in base64."""
    if isinstance(value, list):
        return [check_raw(item, f"{path}[{index}]") for index, item in enumerate(value)]
    if not isinstance(value, dict):
        return value
    converted = {}
    for key, item in value.items():
        where = f"{path}.{key}"
        if not CAMEL_CASE.match(key):
            raise PayloadError(f"{where}: field names are lowerCamelCase in OTLP/JSON")
        if key in ID_CHARACTERS:
            converted[key] = hex_id_to_base64(key, item, where)
            continue
        if key in INT64_FIELDS and not is_decimal_string(item):
            raise PayloadError(f"{where}: a 64-bit integer is a decimal string in OTLP/JSON, not {item!r}")
        if key in INT64_LIST_FIELDS and not (isinstance(item, list) and all(map(is_decimal_string, item))):
            raise PayloadError(f"{where}: 64-bit integers are decimal strings in OTLP/JSON, not {item!r}")
        if key in ENUM_FIELDS and (not isinstance(item, int) or isinstance(item, bool)):
            raise PayloadError(f"{where}: an enum is its integer in OTLP/JSON, not {item!r}")
        converted[key] = check_raw(item, where)
    return converted


def is_decimal_string(value):
    return isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value) is not None


def hex_id_to_base64(key, value, where):
    expected = ID_CHARACTERS[key]
    if key == "parentSpanId" and value == "":
        return ""
    if not isinstance(value, str) or len(value) != expected or not HEX.match(value):
        raise PayloadError(f"{where}: {key} must be {expected} lowercase hex characters, not {value!r}")
    if set(value) == {"0"}:
        raise PayloadError(f"{where}: an all-zero {key} is invalid")
    return base64.b64encode(bytes.fromhex(value)).decode("ascii")


def parse(kind, text):
    """Checks and parses one request body; returns the protobuf message and the raw JSON."""
    try:
        raw = json.loads(text)
    except ValueError as error:
        raise PayloadError(f"not JSON: {error}") from None
    if not isinstance(raw, dict):
        raise PayloadError("a request is a JSON object")
    converted = check_raw(raw)
    message = ExportTraceServiceRequest() if kind == "traces" else ExportMetricsServiceRequest()
    try:
        json_format.Parse(json.dumps(converted), message, ignore_unknown_fields=False)
    except json_format.ParseError as error:
        raise PayloadError(f"the official schema refuses it: {error}") from None
    return message, raw


def attributes_of(key_values):
    """An OTLP attribute list as a dict of plain values (ints as ints)."""
    result = {}
    for key_value in key_values:
        value = key_value.value
        field = value.WhichOneof("value")
        result[key_value.key] = getattr(value, field) if field else None
    return result


class Store:
    """Everything accepted so far, and the checks that span requests."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = {"traces": 0, "metrics": 0}
        self.refused = 0
        self.rejected = 0
        self.errors = []
        self.spans = {}
        self.duplicate_span_ids = []
        self.service_names = set()
        self.metrics = []

    def add(self, kind, text):
        """Checks and records one request; raises PayloadError (and records nothing of it) if it fails a check."""
        message, raw = parse(kind, text)
        records = self.traces(message, raw) if kind == "traces" else self.metric_records(message)
        with self.lock:
            self.requests[kind] += 1
            for resource in (message.resource_spans if kind == "traces" else message.resource_metrics):
                name = attributes_of(resource.resource.attributes).get("service.name")
                if name is not None:
                    self.service_names.add(name)
            if kind == "traces":
                for span in records:
                    if span["span_id"] in self.spans:
                        self.duplicate_span_ids.append(span["span_id"])
                    self.spans[span["span_id"]] = span
            else:
                self.metrics.extend(records)

    def traces(self, message, raw):
        spans = []
        for resource_index, resource in enumerate(message.resource_spans):
            for scope_index, scope in enumerate(resource.scope_spans):
                raw_resource = raw["resourceSpans"][resource_index]
                raw_spans = raw_resource["scopeSpans"][scope_index].get("spans", [])
                for span, raw_span in zip(scope.spans, raw_spans):
                    record = {
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex(),
                        "name": span.name,
                        "kind": span.kind,
                        "start_time_unix_nano": span.start_time_unix_nano,
                        "end_time_unix_nano": span.end_time_unix_nano,
                        "status_code": span.status.code,
                        "status_message": span.status.message,
                        "attributes": attributes_of(span.attributes),
                        "events": [{"name": event.name, "time_unix_nano": event.time_unix_nano,
                                    "attributes": attributes_of(event.attributes)} for event in span.events],
                        "scope": scope.scope.name,
                    }
                    # What protobuf read must be exactly what was sent.
                    for field, key in (("trace_id", "traceId"), ("span_id", "spanId"),
                                       ("parent_span_id", "parentSpanId")):
                        if record[field] != raw_span.get(key, ""):
                            raise PayloadError(f"span {raw_span.get('spanId')}: {key} read back as {record[field]}")
                    if record["end_time_unix_nano"] < record["start_time_unix_nano"]:
                        raise PayloadError(f"span {record['span_id']} ends before it starts")
                    spans.append(record)
        return spans

    def metric_records(self, message):
        records = []
        for resource in message.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    records.append(metric_record(metric, scope.scope.name))
        return records

    def summary(self):
        with self.lock:
            spans = list(self.spans.values())
            orphans, unnested = [], []
            for span in spans:
                parent_id = span["parent_span_id"]
                if not parent_id:
                    continue
                parent = self.spans.get(parent_id)
                if parent is None or parent["trace_id"] != span["trace_id"]:
                    orphans.append(span["span_id"])
                elif not (parent["start_time_unix_nano"] <= span["start_time_unix_nano"]
                          and span["end_time_unix_nano"] <= parent["end_time_unix_nano"]):
                    unnested.append(span["span_id"])
            names = {}
            for span in spans:
                names[span["name"]] = names.get(span["name"], 0) + 1
            return {
                "requests": dict(self.requests),
                "refused": self.refused,
                "rejected": self.rejected,
                "errors": list(self.errors),
                "spans": len(spans),
                "traces": len({span["trace_id"] for span in spans}),
                "roots": sum(1 for span in spans if not span["parent_span_id"]),
                "orphans": orphans,
                "unnested": unnested,
                "duplicate_span_ids": list(self.duplicate_span_ids),
                "span_names": names,
                "service_names": sorted(self.service_names),
                "span_list": spans,
                "metrics": list(self.metrics),
            }


def metric_record(metric, scope_name):
    data = metric.WhichOneof("data")
    record = {"name": metric.name, "unit": metric.unit, "type": data, "scope": scope_name, "points": []}
    body = getattr(metric, data) if data else None
    if data in ("sum", "histogram"):
        record["temporality"] = body.aggregation_temporality
    if data == "sum":
        record["monotonic"] = body.is_monotonic
    for point in body.data_points if body is not None else []:
        entry = {"attributes": attributes_of(point.attributes), "start_time_unix_nano": point.start_time_unix_nano,
                 "time_unix_nano": point.time_unix_nano}
        if data == "histogram":
            buckets, bounds = list(point.bucket_counts), list(point.explicit_bounds)
            if len(buckets) != len(bounds) + 1:
                raise PayloadError(f"{metric.name}: {len(buckets)} buckets for {len(bounds)} bounds")
            if sum(buckets) != point.count:
                raise PayloadError(f"{metric.name}: buckets add up to {sum(buckets)}, count is {point.count}")
            if any(low >= high for low, high in zip(bounds, bounds[1:])):
                raise PayloadError(f"{metric.name}: bounds are not increasing")
            entry.update(count=point.count, bucket_counts=buckets, explicit_bounds=bounds,
                         sum=point.sum if point.HasField("sum") else None,
                         min=point.min if point.HasField("min") else None,
                         max=point.max if point.HasField("max") else None)
        else:
            entry["value"] = getattr(point, point.WhichOneof("value")) if point.WhichOneof("value") else None
        record["points"].append(entry)
    return record


def make_handler(store, failures):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # noqa: A002 - the base class's name
            pass

        def reply(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/summary":
                self.reply(200, store.summary())
            else:
                self.reply(404, {"code": 5, "message": f"no {self.path}"})

        def do_POST(self):
            length = self.headers.get("Content-Length")
            if length is None or not length.isdigit():
                self.close_connection = True
                self.reply(411, {"code": 3, "message": "a Content-Length is required"})
                return
            body = self.rfile.read(int(length))
            kind = KINDS.get(self.path)
            if kind is None:
                self.reply(404, {"code": 5, "message": f"no {self.path}"})
                return
            with failures["lock"]:
                fail = failures["left"] > 0
                if fail:
                    failures["left"] -= 1
            if fail:
                with store.lock:
                    store.refused += 1
                self.reply(failures["status"], {"code": 14, "message": "failing on purpose (--fail-first)"})
                return
            if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
                self.reply(415, {"code": 3, "message": "OTLP/JSON is sent as application/json"})
                return
            try:
                store.add(kind, body.decode("utf-8"))
            except (PayloadError, UnicodeDecodeError) as error:
                with store.lock:
                    store.rejected += 1
                    store.errors.append(f"{self.path}: {error}")
                self.reply(400, {"code": 3, "message": str(error)})
                return
            self.reply(200, {})

    return Handler


def serve(arguments):
    store = Store()
    failures = {"left": arguments.fail_first, "status": arguments.fail_status, "lock": threading.Lock()}
    server = HTTPServer(("127.0.0.1", arguments.port), make_handler(store, failures))
    print(f"listening {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


def check(arguments):
    store = Store()
    with open(arguments.file, encoding="utf-8") as file:
        lines = [line for line in file.read().splitlines() if line.strip()]
    try:
        if not lines:
            raise PayloadError("the file holds no request")
        for number, line in enumerate(lines, 1):
            try:
                root = next(iter(json.loads(line)), None)
            except (ValueError, TypeError):
                root = None
            kind = ROOT_FIELDS.get(root)
            if kind is None:
                raise PayloadError(f"line {number}: neither resourceSpans nor resourceMetrics")
            try:
                store.add(kind, line)
            except PayloadError as error:
                raise PayloadError(f"line {number}: {error}") from None
    except PayloadError as error:
        print(json.dumps({"error": str(error)}))
        return 1
    print(json.dumps(store.summary()))
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve", help="receive OTLP/JSON over HTTP")
    serve_parser.add_argument("--port", type=int, default=0)
    serve_parser.add_argument("--fail-first", type=int, default=0, metavar="N")
    serve_parser.add_argument("--fail-status", type=int, default=503, metavar="CODE")
    check_parser = commands.add_parser("check", help="check a file of OTLP/JSON lines")
    check_parser.add_argument("file")
    arguments = parser.parse_args()
    if arguments.command == "serve":
        serve(arguments)
        return 0
    return check(arguments)


if __name__ == "__main__":
    sys.exit(main())

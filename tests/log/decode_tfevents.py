#!/usr/bin/env python3
"""Decode a TensorBoard event file independently of qa-train's writer and check it.

usage: decode_tfevents.py FILE [METRICS.jsonl]

Checks every TFRecord frame (length, masked CRC-32C of the length, data, masked CRC-32C of the data; the
CRC-32C is computed here, bit by bit), parses every record with protobuf's own parser (python3-protobuf)
against a schema built at run time with the field numbers of TensorBoard's
tensorboard/compat/proto/event.proto and summary.proto, checks that protobuf re-encodes each record to the
same bytes (no unknown or misnumbered fields), that the first event is file_version "brain.Event:2", and
prints the scalars as "step<TAB>tag<TAB>value".

With METRICS.jsonl (qa-train's logs/metrics.jsonl), every scalar must equal, at float32 precision, the
value of the matching field of the event of the same kind and step, and every such value from the first
logged step on must be in the file. Exits 1 on any problem, 2 on bad usage.
"""

import json
import math
import struct
import sys

from google.protobuf import descriptor_pb2, descriptor_pool

try:
    from google.protobuf.message_factory import GetMessageClass as _get_message_class
except ImportError:  # protobuf < 4.22
    from google.protobuf import message_factory as _mf

    _FACTORY = None

    def _get_message_class(descriptor):
        global _FACTORY
        if _FACTORY is None:
            _FACTORY = _mf.MessageFactory(descriptor.file.pool)
        return _FACTORY.GetPrototype(descriptor)


# metrics.jsonl field -> TensorBoard tag, per event kind (Hugging Face Trainer's names where it has one).
TAGS = {
    "train": {
        "loss": "train/loss",
        "lr": "train/learning_rate",
        "grad_norm": "train/grad_norm",
        "epoch": "train/epoch",
        "tokens_per_sec": "perf/tokens_per_sec",
        "padding_fraction": "perf/padding_fraction",
        "peak_rss_mb": "perf/peak_rss_mb",
        "cuda_peak_allocated_mb": "perf/cuda_peak_allocated_mb",
        "cuda_reserved_mb": "perf/cuda_reserved_mb",
        "mfu": "perf/mfu",
    },
    "eval": {
        "eval_loss": "eval/loss",
        "exact_match": "eval/exact_match",
        "f1": "eval/f1",
    },
}
TAG_TO_FIELD = {tag: (kind, key) for kind, table in TAGS.items() for key, tag in table.items()}


class Bad(Exception):
    pass


# ---- CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), written out here on purpose -------------
def _crc_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc = _TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc(data):
    crc = crc32c(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283  # the standard check value


# ---- the schema: TensorBoard's field numbers --------------------------------------------------------
def _build_messages():
    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="qa_tfevents_check.proto", package="tensorboard", syntax="proto3")

    def field(msg, name, number, ftype, label=F.LABEL_OPTIONAL, type_name=None, oneof=None):
        f = msg.field.add(name=name, number=number, type=ftype, label=label)
        if type_name:
            f.type_name = type_name
        if oneof is not None:
            f.oneof_index = oneof
        return f

    # message Summary { message Value { string node_name = 7; string tag = 1;
    #   oneof value { float simple_value = 2; bytes obsolete_old_style_histogram = 3; ... } }
    #   repeated Value value = 1; }
    summary = fdp.message_type.add(name="Summary")
    value = summary.nested_type.add(name="Value")
    value.oneof_decl.add(name="value")
    field(value, "tag", 1, F.TYPE_STRING)
    field(value, "simple_value", 2, F.TYPE_FLOAT, oneof=0)
    field(value, "obsolete_old_style_histogram", 3, F.TYPE_BYTES, oneof=0)
    field(value, "node_name", 7, F.TYPE_STRING)
    field(summary, "value", 1, F.TYPE_MESSAGE, F.LABEL_REPEATED, ".tensorboard.Summary.Value")

    # message SessionLog { enum SessionStatus {...}; SessionStatus status = 1; string checkpoint_path = 2;
    #   string msg = 3; }
    session = fdp.message_type.add(name="SessionLog")
    status = session.enum_type.add(name="SessionStatus")
    for i, n in enumerate(["STATUS_UNSPECIFIED", "START", "STOP", "CHECKPOINT"]):
        status.value.add(name=n, number=i)
    field(session, "status", 1, F.TYPE_ENUM, type_name=".tensorboard.SessionLog.SessionStatus")
    field(session, "checkpoint_path", 2, F.TYPE_STRING)
    field(session, "msg", 3, F.TYPE_STRING)

    # message Event { double wall_time = 1; int64 step = 2; oneof what { string file_version = 3;
    #   bytes graph_def = 4; Summary summary = 5; SessionLog session_log = 7; bytes meta_graph_def = 9; } }
    event = fdp.message_type.add(name="Event")
    event.oneof_decl.add(name="what")
    field(event, "wall_time", 1, F.TYPE_DOUBLE)
    field(event, "step", 2, F.TYPE_INT64)
    field(event, "file_version", 3, F.TYPE_STRING, oneof=0)
    field(event, "graph_def", 4, F.TYPE_BYTES, oneof=0)
    field(event, "summary", 5, F.TYPE_MESSAGE, type_name=".tensorboard.Summary", oneof=0)
    field(event, "session_log", 7, F.TYPE_MESSAGE, type_name=".tensorboard.SessionLog", oneof=0)
    field(event, "meta_graph_def", 9, F.TYPE_BYTES, oneof=0)

    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return _get_message_class(pool.FindMessageTypeByName("tensorboard.Event"))


Event = _build_messages()


def _has_unknown_fields(msg):
    try:
        if len(msg.UnknownFields()) > 0:
            return True
    except (AttributeError, NotImplementedError):  # newer protobuf: fall back on the re-encoding check
        return False
    for fd, v in msg.ListFields():
        if fd.message_type is None:
            continue
        for sub in v if fd.label == fd.LABEL_REPEATED else [v]:
            if _has_unknown_fields(sub):
                return True
    return False


# ---- reading ----------------------------------------------------------------------------------------
def read_records(path):
    with open(path, "rb") as f:
        blob = f.read()
    records, pos = [], 0
    while pos < len(blob):
        where = "%s: record %d at byte %d" % (path, len(records) + 1, pos)
        if len(blob) - pos < 12:
            raise Bad("%s: truncated header (%d bytes left)" % (where, len(blob) - pos))
        header = blob[pos : pos + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", blob[pos + 8 : pos + 12])
        if masked_crc(header) != length_crc:
            raise Bad("%s: length CRC mismatch (stored %08x, computed %08x)" % (where, length_crc, masked_crc(header)))
        if len(blob) - pos - 12 < length + 4:
            raise Bad("%s: truncated data (length %d, %d bytes left)" % (where, length, len(blob) - pos - 12))
        data = blob[pos + 12 : pos + 12 + length]
        (data_crc,) = struct.unpack("<I", blob[pos + 12 + length : pos + 16 + length])
        if masked_crc(data) != data_crc:
            raise Bad("%s: data CRC mismatch (stored %08x, computed %08x)" % (where, data_crc, masked_crc(data)))
        records.append((where, data))
        pos += 16 + length
    return records


def decode(path):
    """Returns (file_version, [(step, tag, value)], [session_start_steps])."""
    records = read_records(path)
    if not records:
        raise Bad("%s: no records" % path)
    scalars, starts, file_version = [], [], None
    for i, (where, data) in enumerate(records):
        event = Event()
        try:
            event.ParseFromString(data)
        except Exception as e:  # google.protobuf.message.DecodeError
            raise Bad("%s: not a tensorboard.Event: %s" % (where, e))
        if _has_unknown_fields(event):
            raise Bad("%s: fields unknown to TensorBoard's Event schema" % where)
        if event.SerializeToString(deterministic=True) != data:
            raise Bad("%s: protobuf re-encodes the record differently (misnumbered or non-canonical fields)" % where)
        if not (1e9 < event.wall_time < 1e11):
            raise Bad("%s: implausible wall_time %r" % (where, event.wall_time))
        what = event.WhichOneof("what")
        if i == 0:
            if what != "file_version" or event.file_version != "brain.Event:2":
                raise Bad("%s: the first event must be file_version 'brain.Event:2', got %s" % (where, what))
            file_version = event.file_version
            continue
        if what == "summary":
            if not event.summary.value:
                raise Bad("%s: empty summary" % where)
            for v in event.summary.value:
                if v.WhichOneof("value") != "simple_value":
                    raise Bad("%s: tag %r has no simple_value" % (where, v.tag))
                scalars.append((event.step, v.tag, v.simple_value))
        elif what == "session_log":
            if event.session_log.status != 1:
                raise Bad("%s: unexpected session_log status %d" % (where, event.session_log.status))
            starts.append(event.step)
        else:
            raise Bad("%s: unexpected event kind %s" % (where, what))
    return file_version, scalars, starts


def as_float32(x):
    try:
        return struct.unpack("<f", struct.pack("<f", x))[0]
    except OverflowError:
        return math.copysign(math.inf, x)


def compare(scalars, metrics_path):
    events = {}
    with open(metrics_path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                e = json.loads(line)
            except ValueError as err:
                raise Bad("%s:%d: %s" % (metrics_path, n, err))
            if e.get("event") in TAGS and isinstance(e.get("step"), int):
                events.setdefault((e["event"], e["step"]), []).append(e)

    problems = []
    seen = set()
    for step, tag, value in scalars:
        if tag not in TAG_TO_FIELD:
            problems.append("step %d: unexpected tag %r" % (step, tag))
            continue
        kind, key = TAG_TO_FIELD[tag]
        candidates = events.get((kind, step), [])
        if not candidates:
            problems.append("step %d: %s = %r but %s has no %s event at that step" % (step, tag, value, metrics_path, kind))
            continue
        if (step, tag) in seen:
            problems.append("step %d: %s written twice" % (step, tag))
        seen.add((step, tag))
        ok = False
        expected = []
        for e in candidates:
            x = e.get(key)
            if isinstance(x, (int, float)) and not isinstance(x, bool):
                expected.append(x)
                f32 = as_float32(float(x))
                if value == f32 or math.isclose(value, f32, rel_tol=1e-6, abs_tol=1e-30):
                    ok = True
        if not ok:
            problems.append("step %d: %s = %r in the event file, %s = %r in %s" % (step, tag, value, key, expected, metrics_path))

    # Completeness: every finite mapped value from the file's first step on was written.
    if scalars:
        first = min(s for s, _, _ in scalars)
        for (kind, step), evs in sorted(events.items()):
            if step < first:
                continue
            for key, tag in TAGS[kind].items():
                for e in evs:
                    x = e.get(key)
                    if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(as_float32(float(x))):
                        if (step, tag) not in seen:
                            problems.append("step %d: %s = %r in %s is missing from the event file" % (step, key, x, metrics_path))
    return problems


def main(argv):
    if len(argv) not in (2, 3):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    try:
        file_version, scalars, starts = decode(argv[1])
        print("file_version\t%s" % file_version)
        for s in starts:
            print("%d\tsession_log\tSTART" % s)
        for step, tag, value in scalars:
            print("%d\t%s\t%.9g" % (step, tag, value))
        if len(argv) == 3:
            problems = compare(scalars, argv[2])
            for p in problems:
                print("MISMATCH: " + p, file=sys.stderr)
            if problems:
                return 1
            print("OK: %d scalars match %s" % (len(scalars), argv[2]), file=sys.stderr)
    except (Bad, OSError) as e:
        print("ERROR: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

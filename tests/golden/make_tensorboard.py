#!/usr/bin/env python3
"""Regenerates tests/golden/tensorboard/events.json: TFRecord-framed Event messages built and
serialized by tensorboard's own protobuf classes and RecordWriter, for the venv-free byte-for-byte
test in tests/test_tensorboard.cpp (which builds the same events with trainer/tensorboard_writer).

    PY=$(bash scripts/reference_env.sh | tail -1)
    $PY tests/golden/make_tensorboard.py
"""
import io
import json
import os

import tensorboard
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.record_writer import RecordWriter

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tensorboard", "events.json")


def framed(event):
    buf = io.BytesIO()
    RecordWriter(buf).write(event.SerializeToString())
    return buf.getvalue().hex()


def main():
    # The same events are spelled out in tests/test_tensorboard.cpp.
    hist = summary_pb2.HistogramProto(min=0.25, max=3.5, num=4, sum=6.0, sum_squares=15.3125,
                                      bucket_limit=[1.875, 3.5], bucket=[2, 2])
    events = {
        "file_version": event_pb2.Event(wall_time=1700000000.5, file_version="brain.Event:2"),
        "scalars": event_pb2.Event(wall_time=1700000001.25, step=40, summary=summary_pb2.Summary(value=[
            summary_pb2.Summary.Value(tag="train/loss", simple_value=2.3125),
            summary_pb2.Summary.Value(tag="train/lr", simple_value=0.0),
            summary_pb2.Summary.Value(tag="eval/accuracy", simple_value=-0.1)])),
        "histogram": event_pb2.Event(wall_time=1700000002.0, step=123456789012, summary=summary_pb2.Summary(value=[
            summary_pb2.Summary.Value(tag="sv/model.layers.0.self_attn.q_proj", histo=hist)])),
        "step_zero": event_pb2.Event(wall_time=3.0, step=0, summary=summary_pb2.Summary(value=[
            summary_pb2.Summary.Value(tag="t", simple_value=1.0)])),
    }
    doc = {"_generated_by": "tests/golden/make_tensorboard.py", "tensorboard": tensorboard.__version__,
           "records": {name: framed(e) for name, e in events.items()}}
    with open(OUT, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()

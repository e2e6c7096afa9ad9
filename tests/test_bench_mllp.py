"""The MLLP benchmark's pieces still run (no timing is asserted: figures belong in bench/)."""

from __future__ import annotations

from carepath.bench.mllp import adt_stream, measure_mllp
from carepath.engine.interop import hl7v2


def test_the_stream_is_taken_as_it_is_sent() -> None:
    stream = adt_stream(8)
    headers = [hl7v2.inspect(message).header for message in stream]
    assert [h.trigger_event for h in headers] == ["A04", "A01", "A08", "A03"] * 2
    assert len({h.control_id for h in headers}) == 8
    assert hl7v2.inspect(stream[1]).patient_key == "GENHOSP:MRN0000000"


def test_the_mllp_measurement_runs_and_reports(database_url: str) -> None:
    result = measure_mllp(database_url, messages=12, connections=2)
    assert result["all_aa"] and result["ack_latency"]["n"] == 12 and result["acks_per_second"] > 0
    assert result["processed_per_second"] > 0

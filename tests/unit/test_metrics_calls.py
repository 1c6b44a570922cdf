"""The call counters: each (method, status, member) bumps its own children, looked up once and reused."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from registry.server.metrics import Metrics

LOOKUP, BATCH, LIST = "/jpr.v1.Registry/Lookup", "/jpr.v1.Registry/LookupBatch", "/jpr.v1.Admin/ListMembers"


def samples(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    body = generate_latest(metrics.registry).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
        if not s.name.endswith("_created")
    }


def test_calls_of_each_method_status_and_member_count_apart_and_a_refusal_counts_no_elements() -> None:
    metrics = Metrics()
    for _ in range(3):
        metrics.call(LOOKUP, "platform-a", "OK", 0.001, 1, 1)
    metrics.call(LOOKUP, "platform-b", "OK", 0.001, 1, 0)
    metrics.call(BATCH, "platform-a", "OK", 0.002, 1000, 7)
    metrics.call(BATCH, "platform-a", "RESOURCE_EXHAUSTED", 0.0001, 5000, 0)
    metrics.call(LIST, None, "OK", 0.003, 0, 0)
    got = samples(metrics)
    assert got[("jpr_calls_total", frozenset({("method", LOOKUP), ("status", "OK")}))] == 4
    assert got[("jpr_calls_total", frozenset({("method", BATCH), ("status", "OK")}))] == 1
    assert got[("jpr_calls_total", frozenset({("method", BATCH), ("status", "RESOURCE_EXHAUSTED")}))] == 1
    assert got[("jpr_calls_total", frozenset({("method", LIST), ("status", "OK")}))] == 1
    assert got[("jpr_member_items_total", frozenset({("member", "platform-a"), ("method", LOOKUP)}))] == 3
    assert got[("jpr_member_items_total", frozenset({("member", "platform-b"), ("method", LOOKUP)}))] == 1
    assert got[("jpr_member_items_total", frozenset({("member", "platform-a"), ("method", BATCH)}))] == 1000  # not the refused 5000
    assert got[("jpr_matched_applicants_total", frozenset({("method", LOOKUP)}))] == 3
    assert got[("jpr_matched_applicants_total", frozenset({("method", BATCH)}))] == 7
    assert got[("jpr_call_items_count", frozenset({("method", BATCH)}))] == 1
    assert got[("jpr_call_duration_seconds_count", frozenset({("method", BATCH)}))] == 2
    assert not any(name.startswith("jpr_call_items") and ("method", LIST) in labels for name, labels in got)  # not a counted method

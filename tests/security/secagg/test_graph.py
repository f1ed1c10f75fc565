"""The communication graph is k-regular, symmetric, seeded and deterministic."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedledger.errors import SecureAggregationError
from fedledger.security.secagg import CommunicationGraph, secagg_plus_degree


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 60), data=st.data(), seed=st.binary(min_size=32, max_size=32))
def test_regular_and_symmetric(n: int, data: st.DataObject, seed: bytes) -> None:
    choices = [k for k in range(2, n, 2)] + [n - 1]
    k = data.draw(st.sampled_from(choices))
    g = CommunicationGraph(n, k, seed)
    for i in range(n):
        near = g.neighbours(i)
        assert len(near) == k and len(set(near)) == k and i not in near
        assert all(i in g.neighbours(j) for j in near)
    assert len(g.edges()) == n * k // 2


def test_deterministic_from_seed() -> None:
    a = CommunicationGraph(200, 16, b"a" * 32)
    assert a.edges() == CommunicationGraph(200, 16, b"a" * 32).edges()
    assert a.edges() != CommunicationGraph(200, 16, b"b" * 32).edges()


def test_degree_rule_and_invalid_degrees() -> None:
    assert secagg_plus_degree(1000) == 20
    assert secagg_plus_degree(5) == 4
    for n, k in [(10, 3), (10, 10), (10, 0), (1, 0)]:
        with pytest.raises(SecureAggregationError):
            CommunicationGraph(n, k, bytes(32))
    with pytest.raises(SecureAggregationError):
        CommunicationGraph(5, 4, bytes(32)).neighbours(5)

"""A poll result: values kept as columns become the same readings, in request order, when asked."""

from __future__ import annotations

from plantwatch.core.reading import GoodValues, PollResult, Reading


def columns(timestamp: int, **values: float) -> GoodValues:
    n = len(values)
    return GoodValues("d", tuple(values), list(values.values()), timestamp, ("kW",) * n, (None,) * n)


def test_columns_become_readings_in_request_order_when_asked() -> None:
    result = PollResult("d", started_ns=5)
    result.add_good(columns(10, a=1.0, b=2.0))
    result.add_good(columns(20, c=3.0))
    assert (result.size, result.ok, result.event_ns) == (3, True, 20)
    assert len(result.good_values) == 2
    assert result.readings == [
        Reading("d", "a", 1.0, 10, unit="kW"),
        Reading("d", "b", 2.0, 10, unit="kW"),
        Reading("d", "c", 3.0, 20, unit="kW"),
    ]
    assert result.good_values == ()  # built once; from now on the list is all there is
    result.readings.append(Reading("d", "e", None, 30, "timeout"))
    assert (result.size, result.ok, result.event_ns) == (4, False, 30)


def test_columns_after_a_failed_request_follow_its_readings() -> None:
    result = PollResult("d")
    result.add_good(columns(10, a=1.0))
    result.readings.append(Reading("d", "b", None, 20, "timeout"))  # the second request failed
    result.add_good(columns(30, c=3.0))
    assert [(r.field, r.timestamp_ns) for r in result.readings] == [("a", 10), ("b", 20), ("c", 30)]
    assert result.good_values == ()


def test_an_empty_result_and_a_copy_with_other_readings() -> None:
    result = PollResult("d", started_ns=7, tags={"line": "2"})
    assert (result.size, result.ok, result.event_ns, result.readings) == (0, True, 7, [])
    result.add_good(columns(10, a=1.0))
    copy = result.with_readings([Reading("d", "z", 9.0, 11)])
    assert (copy.device, copy.started_ns, copy.tags, copy.size) == ("d", 7, {"line": "2"}, 1)
    assert [r.field for r in result.readings] == ["a"]  # the original keeps its own


def test_readings_appended_through_a_list_taken_early_stay_in_order() -> None:
    result = PollResult("d")
    into = result.readings  # the list is handed out while still empty (as `missing` gets it)
    result.add_good(columns(10, a=1.0))
    into.append(Reading("d", "b", None, 20, "timeout"))
    assert [r.field for r in result.readings] == ["a", "b"]
    assert result.size == 2
    given = [Reading("d", "z", None, 5, "timeout")]
    passed_in = PollResult("d", given)
    passed_in.add_good(columns(10, a=1.0))
    given.append(Reading("d", "y", None, 30, "timeout"))
    assert [r.field for r in passed_in.readings] == ["z", "a", "y"]


def test_a_repr_shows_every_reading_and_keeps_the_columns() -> None:
    result = PollResult("d", started_ns=5)
    result.add_good(columns(10, a=1.0))
    assert "Reading(device='d', field='a', value=1.0, timestamp_ns=10" in repr(result)
    assert len(result.good_values) == 1  # still columns: the repr built its readings aside

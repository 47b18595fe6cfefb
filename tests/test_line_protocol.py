"""The InfluxDB data contract: formatting, and a property-tested round trip through real InfluxDB."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plantwatch.contract.influx import (
    TEMPLATE_MIN_VALUES,
    DeviceSeries,
    _append_lines_by_reading,
    device_tags,
    format_field_value,
    poll_lines,
    series_prefix,
    string_field_as_stored,
    tag_value_as_stored,
)
from plantwatch.core.reading import GoodValues, PollResult, Reading
from tests.services.influxdb import InfluxDBServer

TRICKY = st.sampled_from(
    [" ", ",", "=", '"', "\n", "\r", "\t", "\\", "炉", "铁合金", "é", "😀", "a", "Z", "0", "'"]
)
ANY_CHAR = st.characters(codec="utf-8", exclude_categories=["Cs"])
TEXT = st.lists(st.one_of(TRICKY, ANY_CHAR), min_size=1, max_size=12).map("".join)


def test_field_literals_keep_their_type() -> None:
    assert format_field_value(True) == "true"
    assert format_field_value(12) == "12i"
    assert format_field_value(-(2**63)) == "-9223372036854775808i"
    assert format_field_value(93.46) == "93.46"
    assert format_field_value(1e-7) == "1e-07"
    assert format_field_value('say "hi" \\ bye\n') == '"say \\"hi\\" \\\\ bye\\n"'
    with pytest.raises(ValueError, match="int64"):
        format_field_value(2**63)


def test_series_prefix_orders_and_escapes() -> None:
    tags = device_tags(
        "works", "saf 1", "ferroalloy", "saf_ferrosilicon", None, {"zone": "b,c", "line": "x=y"}
    )
    assert series_prefix("saf", tags) == (
        r"saf,plant=works,device=saf\ 1,sector=ferroalloy,model=saf_ferrosilicon,line=x\=y,zone=b\,c"
    )


def test_poll_lines_split_good_and_bad_values() -> None:
    series = DeviceSeries.build("cems", device_tags("w", "stack-1", "emissions", "dust_cems", None, {}))
    result = PollResult("stack-1", requests=2, started_ns=1_000, finished_ns=2_500_000)
    result.readings = [
        Reading("stack-1", "dust", 31.5, 1_100, unit="mg/m3"),
        Reading("stack-1", "flag", "N", 1_100),
        Reading("stack-1", "count", 7, 1_200),
        Reading("stack-1", "o2", None, 1_200, "exception 2 ILLEGAL_ADDRESS"),
        Reading("stack-1", "huge", 2**64 - 1, 1_200),
    ]
    prefix = "cems,plant=w,device=stack-1,sector=emissions,model=dust_cems"
    assert poll_lines(series, result) == [
        f'{prefix} dust=31.5,flag="N" 1100',
        f"{prefix} count=7i 1200",
        "plantwatch_quality,plant=w,device=stack-1,sector=emissions,model=dust_cems,field=o2 "
        'reason="exception 2 ILLEGAL_ADDRESS" 1200',
        "plantwatch_quality,plant=w,device=stack-1,sector=emissions,model=dust_cems,field=huge "
        'reason="integer 18446744073709551615 is outside InfluxDB\'s int64 range" 1200',
        "plantwatch_poll,plant=w,device=stack-1,sector=emissions,model=dust_cems "
        "good=3i,bad=2i,requests=2i,duration_ms=2.499 1000",
    ]


def test_an_all_good_poll_is_one_line_and_an_out_of_range_integer_still_becomes_a_quality_line() -> None:
    series = DeviceSeries.build("m", {"plant": "w", "device": "d"})
    result = PollResult("d", requests=1, started_ns=1_000, finished_ns=1_000)
    result.readings = [
        Reading("d", "load %", 50.5, 1_000),
        Reading("d", "run", True, 1_000),
        Reading("d", "n", -7, 1_000),
    ]
    assert poll_lines(series, result)[0] == "m,plant=w,device=d load\\ %=50.5,run=true,n=-7i 1000"
    result.readings.append(Reading("d", "big", 2**63, 1_000))
    assert poll_lines(series, result)[:2] == [
        "m,plant=w,device=d load\\ %=50.5,run=true,n=-7i 1000",
        "plantwatch_quality,plant=w,device=d,field=big "
        'reason="integer 9223372036854775808 is outside InfluxDB\'s int64 range" 1000',
    ]


VALUES = st.one_of(
    st.floats(allow_nan=False),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.booleans(),
    TEXT,
)


@given(
    readings=st.lists(
        st.tuples(
            st.sampled_from(["dust", "o2", "a b", "x=1", "%d", "%", "炉温"]),
            VALUES,
            st.sampled_from([1_000, 1_000, 1_000, 2_000]),
            st.sampled_from(["good", "good", "good", "timeout"]),
        ),
        min_size=1,
        max_size=2 * TEMPLATE_MIN_VALUES,
    ),
    one_good_instant=st.booleans(),  # else most long polls would miss the one-line path
)
@settings(max_examples=300, deadline=None)
def test_the_one_line_path_writes_what_formatting_value_by_value_writes(
    readings: list[tuple[str, object, int, str]], one_good_instant: bool
) -> None:
    if one_good_instant:
        readings = [(field, value, 1_000, "good") for field, value, _, _ in readings]
    series = DeviceSeries.build("m", {"plant": "w", "device": "d"})
    result = PollResult("d", started_ns=1_000, finished_ns=1_000, polled=False)
    result.readings = [
        Reading("d", field, value if quality == "good" else None, ts, quality)  # type: ignore[arg-type]
        for field, value, ts, quality in readings
    ]
    reference: list[str] = []
    good = _append_lines_by_reading(series, result.readings, reference)
    assert poll_lines(series, result) == reference
    assert good == sum(1 for *_, quality in readings if quality == "good") - sum(
        1 for line in reference if "outside InfluxDB's int64 range" in line
    )


@given(
    requests=st.lists(
        st.lists(st.tuples(st.sampled_from(["o2", "a b", "%s", "炉温"]), VALUES), min_size=1, max_size=4),
        min_size=1,
        max_size=3,
    )
)
@settings(max_examples=200, deadline=None)
def test_values_kept_as_columns_write_the_lines_their_readings_write(
    requests: list[list[tuple[str, object]]],
) -> None:
    series = DeviceSeries.build("m", {"plant": "w", "device": "d"})
    columns = PollResult("d", requests=len(requests), started_ns=1_000, finished_ns=9_000)
    for n, values in enumerate(requests):
        fields = tuple(field for field, _ in values)
        none = (None,) * len(values)
        columns.add_good(GoodValues("d", fields, [v for _, v in values], 1_000 * (n + 1), none, none))  # type: ignore[misc]
    as_columns = poll_lines(series, columns)
    readings = PollResult("d", list(columns.readings), len(requests), 1_000, 9_000)
    assert as_columns == poll_lines(series, readings)


@given(tag=TEXT, text=TEXT)
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_round_trip_through_real_influxdb(influxdb: InfluxDBServer, tag: str, text: str) -> None:
    db = "roundtrip"
    influxdb.query(f'CREATE DATABASE "{db}"')
    influxdb.query("DROP SERIES FROM m", db)
    tags = {"plant": "p", "site": tag}
    line = f"{series_prefix('m', tags)} s={format_field_value(text)},n=1i 1000"
    assert influxdb.write(line, db) == 204, line
    (series,) = influxdb.query('SELECT s, n, "site" FROM m', db)
    (row,) = series["values"]
    assert row == [1000, string_field_as_stored(text), 1, tag_value_as_stored(tag)]

"""The InfluxDB data contract: formatting, and a property-tested round trip through real InfluxDB."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plantwatch.contract.influx import (
    DeviceSeries,
    device_tags,
    format_field_value,
    poll_lines,
    series_prefix,
    string_field_as_stored,
    tag_value_as_stored,
)
from plantwatch.core.reading import PollResult, Reading
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

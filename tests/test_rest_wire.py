"""The Bitrix24 wire protocol's pieces (rxcrm/rest/wire.py), checked against what
shared/BITRIX24_REST.md describes (§1.2 parameters, §1.4 envelope, §1.6 paging, §2 batch
sections) — not against our own output."""
from __future__ import annotations

import time

import pytest

from rxcrm.rest import wire


def test_php_style_keys_nest_append_and_decode_like_parse_str():
    got = wire.parse_query("fields[TITLE]=%D0%9A%D1%83%D1%80%D1%81+Python&fields[PHONE][0][VALUE]=%2B79001234567"
                           "&fields[PHONE][0][VALUE_TYPE]=WORK&select[]=ID&select[]=TITLE&filter[%3EID]=5&start=50")
    assert got == {"fields": {"TITLE": "Курс Python",
                              "PHONE": [{"VALUE": "+79001234567", "VALUE_TYPE": "WORK"}]},
                   "select": ["ID", "TITLE"], "filter": {">ID": "5"}, "start": "50"}


def test_php_quirks_dots_in_names_empty_values_and_explicit_indexes():
    got = wire.parse_query("a.b=1&flag&list[2]=x&list[]=y&order[ID]=ASC")
    assert got["a_b"] == "1" and got["flag"] == ""
    assert got["list"] == {"2": "x", "3": "y"}  # not 0..n-1: a map, as in PHP
    assert got["order"] == {"ID": "ASC"}


def test_a_php_map_keyed_0_to_n_is_a_list():
    assert wire.parse_query("select[0]=ID&select[1]=TITLE") == {"select": ["ID", "TITLE"]}
    assert wire.as_list({"0": "ID", "1": "TITLE"}) == ["ID", "TITLE"]
    assert wire.as_list("ID") == ["ID"] and wire.as_list(None) == []


def test_body_json_form_and_invalid_json():
    assert wire.parse_body(b'{"fields": {"TITLE": "x"}}', "application/json; charset=utf-8") == {"fields": {"TITLE": "x"}}
    assert wire.parse_body(b"{not json", "application/json") == {}  # Bitrix24 quietly reads nothing
    assert wire.parse_body(b"id=5&fields[TITLE]=a+b", "application/x-www-form-urlencoded") == \
        {"id": "5", "fields": {"TITLE": "a b"}}
    # the body's top-level keys replace the query's
    assert wire.merge({"id": "1", "x": "q"}, {"id": "2"}) == {"id": "2", "x": "q"}


def test_parameter_names_are_found_in_any_case():
    params = {"ID": "7", "Fields": {"TITLE": "x"}, "FILTER": {}}
    assert wire.param(params, "id") == "7"
    assert wire.param(params, "fields") == {"TITLE": "x"}
    assert wire.param(params, "filter") == {}
    assert wire.param(params, "select", "none") == "none"


@pytest.mark.parametrize("value", [None, "", "abc", "0", "-3", {"a": 1}])
def test_a_bad_id_is_refused_with_bitrix24s_words(value):
    with pytest.raises(wire.RestError) as exc:
        wire.as_id(value)
    assert exc.value.status == 400 and exc.value.body() == {"error": "", "error_description": "ID is not defined or invalid."}


def test_a_map_parameter_that_is_not_one_is_refused():
    with pytest.raises(wire.RestError) as exc:
        wire.as_map("TITLE", "fields")
    assert exc.value.description == "Parameter 'fields' must be array."
    assert wire.as_map([], "fields") == {} and wire.as_map(None, "filter") == {}


def test_the_envelope_carries_paging_and_the_whole_time_block():
    started = time.time() - 0.25
    out = wire.envelope(wire.Answer([{"ID": "1"}], total=120, next=50), started)
    assert out["result"] == [{"ID": "1"}] and out["next"] == 50 and out["total"] == 120
    t = out["time"]
    for key in ("start", "finish", "duration", "processing", "date_start", "date_finish"):
        assert key in t  # b24pysdk's BitrixTimeResponse needs each of them
    assert t["duration"] >= 0.25 and isinstance(t["operating_reset_at"], int)
    assert t["date_start"].endswith("+03:00")
    assert "next" not in wire.envelope(wire.Answer([], total=0), started)
    assert set(wire.envelope(True, started)) == {"result", "time"}


def test_legacy_pages_are_pages_of_fifty():
    assert wire.legacy_page(0) == 0 and wire.legacy_page(37) == 0 and wire.legacy_page(50) == 50
    assert wire.legacy_page(-1) == 0
    assert wire.next_start(0, 120) == 50 and wire.next_start(100, 120) is None and wire.next_start(0, 50) is None
    assert wire.as_start("abc") == 0 and wire.as_start("-1") == -1 and wire.as_start(None) == 0


def test_batch_sections_follow_phps_json_encode():
    assert wire.php_section({}) == []
    assert wire.php_section({"0": 1, "1": 2}) == [1, 2]
    assert wire.php_section({"a": 1}) == {"a": 1}
    assert wire.php_section({"1": "x"}) == {"1": "x"}  # keys not starting at 0: an object


def test_batch_commands_from_json_and_from_a_double_encoded_form():
    halt, cmds = wire.batch_commands({"halt": 0, "cmd": {"a": "crm.lead.get?ID=1", "b": "crm.lead.list?filter[>ID]=$result[a][ID]"}})
    assert halt is False and cmds == [("a", "crm.lead.get", "ID=1"), ("b", "crm.lead.list", "filter[>ID]=$result[a][ID]")]
    # a GET/form batch: the outer parse decodes once, the command's own parse once more
    outer = wire.parse_query("halt=1&cmd[0]=crm.lead.add%3Ffields%5BTITLE%5D%3DJohn%2526Martin")
    halt, cmds = wire.batch_commands(outer)
    assert halt is True and cmds == [("0", "crm.lead.add", "fields[TITLE]=John%26Martin")]
    assert wire.parse_query(cmds[0][2]) == {"fields": {"TITLE": "John&Martin"}}
    with pytest.raises(wire.RestError):
        wire.batch_commands({"cmd": "crm.lead.list"})


def test_references_to_earlier_answers():
    results = {"result": {"a": {"ID": "17", "TITLE": "Курс"}, "1": [{"ID": "5"}, {"ID": "9"}],
                          "items": {"items": [{"id": 3}]}},
               "total": {"1": 120}}
    params = wire.parse_query("filter[>ID]=$result[a][ID]&title=Copy of $result[a][TITLE]&ids=$result[1]"
                              "&last=$result[1][1][ID]&n=$total[1]&wrapped=$result[items][items][0][id]")
    got = wire.resolve_refs(params, results)
    assert got == {"filter": {">ID": "17"}, "title": "Copy of Курс", "ids": [{"ID": "5"}, {"ID": "9"}],
                   "last": "9", "n": 120, "wrapped": 3}
    # past the last page: the path does not exist — nothing, never an error
    assert wire.resolve_refs({"filter": {">ID": "$result[1][49][ID]"}}, results) == {"filter": {">ID": None}}

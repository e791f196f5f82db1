"""The REST API over HTTP (rxcrm/rest/routes.py) with a Starlette test client: webhooks as
rows, credentials, scopes, the envelope, batch, the rate limit — answers compared with
shared/BITRIX24_REST.md, not with our own output."""
from __future__ import annotations

import json
import warnings

import pytest
from starlette.applications import Starlette

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from starlette.testclient import TestClient

from rxcrm.db import session_scope
from rxcrm.models import AuditRecord, RestWebhook, User
from rxcrm.rest import routes as rest
from rxcrm.services import webhooks
from rxcrm.services.auth import actor_for
from rxcrm.services.errors import AccessDenied, ValidationFailed

from . import factories as f


@pytest.fixture
def world(db, monkeypatch):
    monkeypatch.setenv("REFLEX_DB_URL", db)
    with session_scope(db) as s:
        admin = f.user(s, "admin", role="admin", dept_code=None, full_name="Админов Пётр")
        m1 = f.user(s, "manager1", full_name="Иванова Мария Олеговна")
        admin_a = actor_for(admin)
        full, full_code = webhooks.create(s, admin_a, user_id=m1.id, name="Маркетплейс курсов")
        users_only, users_code = webhooks.create(s, admin_a, user_id=m1.id, name="Справочник", scopes=["user"])
        ids = {"admin": admin.id, "m1": m1.id, "full": full.id}
    monkeypatch.setattr(rest, "BUCKET", rest.Bucket(50, 2))
    client = TestClient(Starlette(routes=rest.routes))
    return client, ids, full_code, users_code


def test_a_webhook_is_a_row_with_its_code_hashed_and_shown_once(world, db):
    client, ids, code, _ = world
    assert len(code) == webhooks.CODE_LEN and code.isalnum() and code.islower()
    with session_scope(db) as s:
        hook = s.get(RestWebhook, ids["full"])
        assert hook.code_hash == webhooks.code_hash(code) and code not in json.dumps(hook.model_dump(), default=str)
        assert s.query(AuditRecord).filter(AuditRecord.action == "webhook_create").count() == 2
        listed = webhooks.listing(s, actor_for(s.get(User, ids["admin"])))
        assert code not in json.dumps(listed, default=str)
        assert {r["name"] for r in listed} == {"Маркетплейс курсов", "Справочник"}


def test_only_an_admin_creates_webhooks_and_bad_input_is_refused(db, monkeypatch):
    with session_scope(db) as s:
        m = f.user(s, "mgr_w", full_name="Менеджер")
        admin = f.user(s, "admin_w", role="admin", dept_code=None, full_name="Админ")
        with pytest.raises(AccessDenied):
            webhooks.create(s, actor_for(m), user_id=m.id, name="x")
        with pytest.raises(ValidationFailed):
            webhooks.create(s, actor_for(admin), user_id=m.id, name="  ")
        with pytest.raises(ValidationFailed):
            webhooks.create(s, actor_for(admin), user_id=m.id, name="x", scopes=["crm", "disk"])
        with pytest.raises(ValidationFailed):
            webhooks.create(s, actor_for(admin), user_id=m.id, name="x", scopes=[])


def test_profile_in_every_url_form_with_the_whole_envelope(world):
    client, ids, code, _ = world
    for url in (f"/rest/{ids['m1']}/{code}/profile", f"/rest/{ids['m1']}/{code}/profile.json",
                f"/rest/{ids['m1']}/{code}/PROFILE/", f"/rest/{ids['m1']}/{code}/Profile.json/"):
        for call in (client.get, client.post):
            r = call(url, follow_redirects=False)
            assert r.status_code == 200, (url, r.text)
            assert r.headers["content-type"] == "application/json; charset=utf-8"
            body = r.json()
            assert body["result"]["ID"] == str(ids["m1"]) and body["result"]["ADMIN"] is False
            assert body["result"]["NAME"] == "Мария" and body["result"]["LAST_NAME"] == "Иванова"
            for key in ("PERSONAL_GENDER", "TIME_ZONE"):
                assert key in body["result"]
            assert {"start", "finish", "duration", "processing", "date_start", "date_finish"} <= set(body["time"])


def test_wrong_credentials_unknown_methods_and_scopes(world):
    client, ids, code, users_code = world
    r = client.post(f"/rest/{ids['m1']}/wrongcode/profile")
    assert r.status_code == 401 and r.json()["error"] == "INVALID_CREDENTIALS"
    r = client.post(f"/rest/{ids['admin']}/{code}/profile")  # another user's id with this code
    assert r.status_code == 401 and r.json()["error"] == "INVALID_CREDENTIALS"
    r = client.post(f"/rest/{ids['m1']}/{code}/crm.nothing.here")
    assert r.status_code == 404 and r.json() == {"error": "ERROR_METHOD_NOT_FOUND", "error_description": "Method not found!"}
    r = client.post("/rest/crm.lead.list?auth=abc")  # the OAuth form: not here
    assert r.status_code == 404 and r.json()["error"] == "ERROR_METHOD_NOT_FOUND"
    assert client.post(f"/rest/{ids['m1']}/{users_code}/user.current").status_code == 200
    r = client.post(f"/rest/{ids['m1']}/{users_code}/server.time")
    assert r.status_code == 200
    scopes = client.post(f"/rest/{ids['m1']}/{users_code}/scope").json()["result"]
    assert scopes == ["user"]
    listed = client.post(f"/rest/{ids['m1']}/{users_code}/methods").json()["result"]
    assert "user.get" in listed and not any(m.startswith("crm.") for m in listed)


def test_a_revoked_webhook_no_longer_answers(world, db):
    client, ids, code, _ = world
    assert client.post(f"/rest/{ids['m1']}/{code}/profile").status_code == 200
    with session_scope(db) as s:
        webhooks.revoke(s, actor_for(s.get(User, ids["admin"])), ids["full"])
    r = client.post(f"/rest/{ids['m1']}/{code}/profile")
    assert r.status_code == 401 and r.json()["error"] == "INVALID_CREDENTIALS"


def test_user_get_filters_and_pages(world):
    client, ids, code, _ = world
    r = client.get(f"/rest/{ids['m1']}/{code}/user.get?ID={ids['admin']}")  # the top-level params are the filter
    body = r.json()
    assert r.status_code == 200 and body["total"] == 1 and body["result"][0]["ID"] == str(ids["admin"])
    assert body["result"][0]["ACTIVE"] is True and "next" not in body
    r = client.post(f"/rest/{ids['m1']}/{code}/user.get", json={"FILTER": {"NAME_SEARCH": "Иванова"}})
    assert [u["ID"] for u in r.json()["result"]] == [str(ids["m1"])]


def test_batch_with_references_errors_and_halt(world):
    client, ids, code, _ = world
    body = {"halt": 0, "cmd": {"me": "profile", "same": f"user.get?ID=$result[me][ID]",
                               "bad": "crm.nothing", "t": "server.time"}}
    r = client.post(f"/rest/{ids['m1']}/{code}/batch", json=body)
    assert r.status_code == 200
    res = r.json()["result"]
    assert set(res) == {"result", "result_error", "result_total", "result_next", "result_time"}
    assert res["result"]["same"][0]["ID"] == str(ids["m1"])
    assert res["result_error"]["bad"]["error"] == "ERROR_METHOD_NOT_FOUND"
    assert res["result_total"] == {"same": 1} and res["result_next"] == []
    assert set(res["result_time"]) == {"me", "same", "t"}
    # halt: the first failure stops the rest
    r = client.post(f"/rest/{ids['m1']}/{code}/batch", json={"halt": 1, "cmd": ["crm.nothing", "profile"]})
    res = r.json()["result"]
    assert res["result"] == [] and res["result_error"] == [{"error": "ERROR_METHOD_NOT_FOUND",
                                                             "error_description": "Method not found!"}]
    # a batch inside a batch is refused; more than 50 commands: the rest are refused
    r = client.post(f"/rest/{ids['m1']}/{code}/batch", json={"cmd": {"x": "batch?cmd[a]=profile"}})
    assert r.json()["result"]["result_error"]["x"]["error"] == "ERROR_BATCH_METHOD_NOT_ALLOWED"
    r = client.post(f"/rest/{ids['m1']}/{code}/batch", json={"cmd": {f"c{i}": "server.time" for i in range(52)}})
    res = r.json()["result"]
    assert len(res["result"]) == 50 and set(res["result_error"]) == {"c50", "c51"}


def test_a_form_encoded_batch_with_double_encoded_commands(world):
    client, ids, code, _ = world
    r = client.post(f"/rest/{ids['m1']}/{code}/batch",
                    content="halt=0&cmd[a]=user.get%3FFILTER%5BNAME_SEARCH%5D%3D%25D0%2598%25D0%25B2%25D0%25B0%25D0%25BD",
                    headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200
    assert [u["ID"] for u in r.json()["result"]["result"]["a"]] == [str(ids["m1"])]


def test_the_leaky_bucket_answers_503_query_limit_exceeded(world, monkeypatch):
    client, ids, code, _ = world
    monkeypatch.setattr(rest, "BUCKET", rest.Bucket(3, 0.001))
    codes = [client.post(f"/rest/{ids['m1']}/{code}/server.time").status_code for _ in range(5)]
    assert codes == [200, 200, 200, 503, 503]
    r = client.post(f"/rest/{ids['m1']}/{code}/server.time")
    assert r.json() == {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}
    bucket = rest.Bucket(2, 2)
    assert bucket.take(1, now=0.0) and bucket.take(1, now=0.0) and not bucket.take(1, now=0.1)
    assert bucket.take(1, now=0.6)  # half a second drained one


def test_bad_input_never_gets_a_500(world):
    client, ids, code, _ = world
    for content, ctype in ((b"{not json", "application/json"), (b"\xff\xfe", "application/x-www-form-urlencoded"),
                           (b"cmd=", "application/x-www-form-urlencoded")):
        r = client.post(f"/rest/{ids['m1']}/{code}/batch", content=content, headers={"Content-Type": ctype})
        assert r.status_code in (200, 400), r.text
        assert "error" in r.json() or "result" in r.json()


def test_a_multipart_form_with_php_keys(world):
    client, ids, code, _ = world
    r = client.post(f"/rest/{ids['m1']}/{code}/user.get",
                    files={"FILTER[NAME_SEARCH]": (None, "Иванова"), "start": (None, "0")})
    assert r.status_code == 200, r.text
    assert [u["ID"] for u in r.json()["result"]] == [str(ids["m1"])]

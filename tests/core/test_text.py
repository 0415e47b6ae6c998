"""The one text check and time window (backend.core.text), and the two nets that apply it
to every query string and H5 form: characters refused with the field named, times outside
2000–2099 refused before any arithmetic."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import httpx
import pytest
from pydantic import Field, ValidationError

from backend.accounts.models import User
from backend.core.errors import Invalid
from backend.core.text import (
    InModel,
    QueryTextCheck,
    check_date,
    check_moment,
    clean_text,
    has_forbidden,
)
from h5.forms import parse_date, parse_local_datetime
from tests.factories import auth_headers, make_street_admin, make_user, session_cookies
from tests.h5.conftest import csrf_token

REFUSED = ["a\x00b", "a\x07b", "a\x1bb", "a\x7fb", "a\x85b", "a\u2028b", "a\ud800b", "a\uffffb"]
EXTREME_MOMENTS = [
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, tzinfo=UTC),
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime(2100, 1, 1, tzinfo=UTC),
]
EXTREME_ISO = ["0001-01-01T00:00:00+00:00", "9999-12-31T23:59:59+00:00", "1970-01-01T00:00:00Z",
               "2100-01-01T00:00:00+08:00"]  # fmt: skip
EXTREME_DATES = ["0001-01-01", "9999-12-31", "1970-01-01", "2100-01-01"]


class Body(InModel):
    title: str
    tags: list[str] = Field(default_factory=list)
    at: datetime | None = None
    day: date | None = None


# --- the check itself ---


@pytest.mark.parametrize("value", REFUSED)
def test_forbidden_characters_are_found(value: str) -> None:
    assert has_forbidden(value)


def test_ordinary_text_passes_and_lines_are_multiline_only() -> None:
    assert not has_forbidden("王阿姨 =1+1 @SUM(A1) 👍 第一行\n第二行\t缩进")
    assert has_forbidden("一行\n两行", multiline=False)
    assert has_forbidden("制表\t符", multiline=False)


def test_clean_text_strips_counts_characters_and_names_the_field() -> None:
    assert clean_text("  舞韵瑜伽 \r\n", field="title", label="名称", max_length=4) == "舞韵瑜伽"
    assert clean_text(
        "第一行\r\n第二行", field="d", label="介绍", max_length=9, multiline=True
    ) == ("第一行\n第二行")
    # Characters, not bytes: 32 Chinese characters are 96 UTF-8 bytes and still fit 32.
    assert len(clean_text("字" * 32, field="name", label="姓名", max_length=32)) == 32
    for value, message in (
        ("字" * 33, "姓名不能超过 32 个字"),
        ("  ", "请填写姓名"),
        (None, "请填写姓名"),
        ("王\x00", "姓名不能包含控制字符或无法识别的字符"),
        ("王\n五", "姓名不能包含控制字符或无法识别的字符"),
    ):
        with pytest.raises(Invalid) as caught:
            clean_text(value, field="name", label="姓名", min_length=1, max_length=32)
        assert caught.value.fields == {"name": message}


def test_in_model_refuses_bad_text_anywhere_and_normalises_newlines() -> None:
    body = Body(title="第一行\r\n第二行", tags=["=1+1"])
    assert body.title == "第一行\n第二行" and body.tags == ["=1+1"]
    for bad in ({"title": "a\x00"}, {"title": "ok", "tags": ["ok", "b\x1f"]}):
        with pytest.raises(ValidationError) as caught:
            Body(**bad)
        assert caught.value.errors()[0]["type"] == "text_control"
    with pytest.raises(ValidationError):
        Body(title="ok", unknown=1)


@pytest.mark.parametrize("moment", EXTREME_ISO)
def test_in_model_refuses_times_outside_the_window(moment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Body(title="ok", at=moment)
    assert caught.value.errors()[0]["type"] in ("moment_window", "datetime_from_date_parsing")


@pytest.mark.parametrize("day", EXTREME_DATES)
def test_in_model_refuses_dates_outside_the_window(day: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Body(title="ok", day=day)
    assert caught.value.errors()[0]["type"] == "date_window"


def test_the_window_is_local_time() -> None:
    shanghai_new_year = datetime(2099, 12, 31, 16, 0, tzinfo=UTC)  # 2100-01-01 00:00 local
    with pytest.raises(Invalid):
        check_moment(shanghai_new_year, field="at")
    assert check_moment(shanghai_new_year - timedelta(seconds=1), field="at")
    assert check_moment(datetime(2000, 1, 1, tzinfo=timezone(timedelta(hours=8))), field="at")
    with pytest.raises(Invalid) as caught:
        check_moment(datetime(1999, 12, 31, 15, 59, tzinfo=UTC), field="at")
    assert caught.value.fields == {"at": "时间须在 2000 年至 2099 年之间"}
    with pytest.raises(Invalid) as caught:
        check_date(date(2100, 1, 1), field="day")
    assert caught.value.fields == {"day": "日期须在 2000 年至 2099 年之间"}
    assert check_moment(None, field="at") is None and check_date(None, field="day") is None


# --- the H5 form parser ---


def test_form_dates_and_times_are_parsed_once_and_bounded() -> None:
    assert parse_date("2026-03-01", field="d") == date(2026, 3, 1)
    assert parse_date(" ", field="d") is None
    moment = parse_local_datetime("2026-03-01T09:30", field="t")
    assert moment is not None and moment.utcoffset() == timedelta(hours=8)
    for bad in ("2026-13-01", "x" * 100, "0001-01-01", "9999-12-31", "1970-01-01", "2100-01-01"):
        with pytest.raises(Invalid) as caught:
            parse_date(bad, field="d")
        assert set(caught.value.fields) == {"d"}
    for bad in ("0001-01-01T00:00", "9999-12-31T23:59", "1970-01-01T00:00", "2100-01-01T00:00"):
        with pytest.raises(Invalid) as caught:
            parse_local_datetime(bad, field="t")
        assert caught.value.fields == {"t": "时间须在 2000 年至 2099 年之间"}
    with pytest.raises(Invalid) as caught:
        parse_local_datetime("", field="t", required=True)
    assert caught.value.fields == {"t": "请填写时间"}


# --- the query-string net of the API ---


def test_clean_query_strings_skip_the_parse() -> None:
    scope = {"type": "http", "path": "/api/v1/activities", "query_string": b"limit=20&upcoming=1"}
    assert QueryTextCheck._unsafe_field(scope) is None
    scope["query_string"] = b"q=%E7%8E%8B%E9%98%BF%E5%A7%A8"
    assert QueryTextCheck._unsafe_field(scope) is None
    scope["query_string"] = b"limit=20&q=a%00b"
    assert QueryTextCheck._unsafe_field(scope) == "q"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/activities?category=%00",
        "/api/v1/activities?upcoming=1&category=a%1Fb",
        "/api/v1/party/registrations?q=%E2%80%A8",
        "/api/v1/notices?status=%7F",
    ],
)
async def test_api_query_parameters_with_control_characters_are_refused(
    client: httpx.AsyncClient, path: str
) -> None:
    user = await make_street_admin()
    response = await client.get(path, headers=auth_headers(user))
    assert response.status_code == 422
    error = response.json()["error"]
    name = path.split("?")[1].split("&")[-1].split("=")[0]
    assert error["code"] == "invalid" and set(error["fields"]) == {name}


async def test_api_path_parameters_with_control_characters_are_refused(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/v1/activities/1%00")
    assert response.status_code == 422
    assert response.json()["error"]["fields"] == {"activity_id": "不能包含控制字符或无法识别的字符"}


# --- the account nickname (API and the 「我的」 page) ---


async def test_a_nickname_with_a_nul_byte_is_refused_and_nothing_changes(
    client: httpx.AsyncClient,
) -> None:
    user = await make_user(nickname="原名")
    for nickname in ("王\x00阿姨", "王\u2028阿姨", "x" * 65):
        response = await client.patch(
            "/api/v1/me", json={"nickname": nickname}, headers=auth_headers(user)
        )
        assert response.status_code == 422, nickname
        assert response.json()["error"]["code"] == "invalid"
        assert set(response.json()["error"]["fields"]) == {"nickname"}
    assert (await User.get(id=user.id)).nickname == "原名"
    # The column's length, the same in body, service and form.
    done = await client.patch(
        "/api/v1/me", json={"nickname": "字" * 64}, headers=auth_headers(user)
    )
    assert done.status_code == 200 and (await User.get(id=user.id)).nickname == "字" * 64


async def test_h5_form_fields_and_queries_with_control_characters_get_the_error_page(
    client: httpx.AsyncClient,
) -> None:
    resident = await make_user(nickname="王阿姨")
    client.cookies.update(session_cookies(resident))
    token = csrf_token((await client.get("/h5/me")).text)
    response = await client.post("/h5/me", data={"csrf_token": token, "nickname": "王\x00阿姨"})
    assert response.status_code == 422
    assert "昵称不能包含控制字符或无法识别的字符" in response.text
    assert (await User.get(id=resident.id)).nickname == "王阿姨"
    query = await client.get("/h5/activities?category=%00")
    assert query.status_code == 422 and "“category”不能包含控制字符" in query.text

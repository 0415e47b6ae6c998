"""What party members and staff type: a control character or a time outside 2000–2099
is 422 naming the field (API) or the error page (H5), never a 500, and nothing is written.
Field limits are the model columns', the same in form, body and service."""

from __future__ import annotations

import httpx
import pytest

from backend.accounts.models import User
from backend.core.errors import Invalid
from backend.orgs.models import Community
from backend.party import records, registrations
from backend.party.models import PartyRegistration, ServiceRecord
from backend.party.schemas import OfflineRecordIn, RegistrationIn
from h5.forms import build
from tests.factories import (
    auth_headers,
    local,
    make_community,
    make_staff,
    make_user,
    session_cookies,
)
from tests.factories.party import make_member
from tests.h5.conftest import csrf_token

EXTREME = ["0001-01-01T00:00:00+00:00", "9999-12-31T23:59:00+00:00", "1970-01-01T00:00:00Z",
           "2100-01-01T00:00:00+08:00"]  # fmt: skip
EXTREME_DATES = ["0001-01-01", "9999-12-31", "1970-01-01", "2100-01-01"]
REGISTRATION = {
    "name": "李建国",
    "phone": "13912345678",
    "work_unit": "静安区税务局",
    "party_org": "静安区税务局机关党委",
}


@pytest.fixture
async def place(db: None) -> tuple[Community, User]:
    community = await make_community()
    return community, await make_staff(community)


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", "李\x00建国"), ("work_unit", "税务局\x1f"), ("party_org", "党委\u2028"),
     ("address", "12号楼\x7f"), ("skills_note", "书法\x00"), ("party_org_contact", "王\n书记")],
)  # fmt: skip
async def test_control_characters_in_a_report_in_are_refused(
    client: httpx.AsyncClient, place, field: str, value: str
) -> None:
    community, _ = place
    user = await make_user(community=community)
    body = {**REGISTRATION, "community_id": community.id, field: value}
    response = await client.post(
        "/api/v1/party/registrations", json=body, headers=auth_headers(user)
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid" and field in error["fields"]
    assert await PartyRegistration.all().count() == 0


def test_report_in_limits_are_the_columns() -> None:
    columns = PartyRegistration._meta.fields_map
    schema = RegistrationIn.model_fields
    for name in ("name", "work_unit", "party_org", "party_org_contact", "address", "skills_note"):
        limits = [getattr(m, "max_length", None) for m in schema[name].metadata]
        limit = next(n for n in limits if n is not None)
        assert limit == columns[name].max_length, name


async def test_the_service_counts_characters_to_the_column(place) -> None:
    community, _ = place
    user = await make_user(community=community)
    form = {**REGISTRATION, "community_id": community.id}
    with pytest.raises(Invalid) as caught:
        build(RegistrationIn, {**form, "name": "字" * 33})
    assert caught.value.fields == {"name": "姓名不能超过 32 个字"}
    done = await registrations.register(
        user=user, data=build(RegistrationIn, {**form, "name": "字" * 32})
    )
    assert done.name == "字" * 32


@pytest.mark.parametrize("field", ["started_at", "ended_at"])
@pytest.mark.parametrize("moment", EXTREME)
async def test_record_times_outside_the_window_are_refused(
    client: httpx.AsyncClient, place, field: str, moment: str
) -> None:
    community, staff = place
    member, _ = await make_member(community, staff)
    body = {
        "user_id": member.id,
        "community_id": community.id,
        "task": "防汛值守",
        "started_at": "2026-03-01T09:00:00+08:00",
        "ended_at": "2026-03-01T11:00:00+08:00",
        field: moment,
    }
    response = await client.post(
        "/api/v1/party/service-records", json=body, headers=auth_headers(staff)
    )
    assert response.status_code == 422 and field in response.json()["error"]["fields"]
    assert await ServiceRecord.all().count() == 0


@pytest.mark.parametrize("field", ["started_at", "ended_at"])
@pytest.mark.parametrize("moment", EXTREME)
async def test_corrections_outside_the_window_are_refused(
    client: httpx.AsyncClient, place, field: str, moment: str
) -> None:
    community, staff = place
    member, _ = await make_member(community, staff)
    record = await records.add_offline_record(
        actor=staff,
        data=OfflineRecordIn(
            user_id=member.id,
            community_id=community.id,
            started_at=local(2026, 3, 1, 9),
            ended_at=local(2026, 3, 1, 11),
            task="防汛值守",
        ),
    )
    body = {
        "started_at": "2026-03-01T09:00:00+08:00",
        "ended_at": "2026-03-01T10:00:00+08:00",
        "reason": "补录时间有误",
        field: moment,
    }
    response = await client.patch(
        f"/api/v1/party/service-records/{record.id}", json=body, headers=auth_headers(staff)
    )
    assert response.status_code == 422 and field in response.json()["error"]["fields"]
    kept = await ServiceRecord.get(id=record.id)
    assert (kept.started_at, kept.ended_at) == (record.started_at, record.ended_at)


@pytest.mark.parametrize("path", ["/party/report", "/party/report.xlsx", "/party/hours"])
@pytest.mark.parametrize("field", ["start_date", "end_date"])
@pytest.mark.parametrize("day", EXTREME_DATES)
async def test_report_periods_outside_the_window_are_refused(
    client: httpx.AsyncClient, place, path: str, field: str, day: str
) -> None:
    community, staff = place
    response = await client.get(
        f"/api/v1{path}?community_id={community.id}&{field}={day}", headers=auth_headers(staff)
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["fields"] == {field: "日期须在 2000 年至 2099 年之间"}


async def _token(client: httpx.AsyncClient, user: User) -> str:
    client.cookies.update(session_cookies(user))
    return csrf_token((await client.get("/h5/party/register")).text)


async def test_the_h5_report_in_form_refuses_a_nul_byte(client: httpx.AsyncClient, place) -> None:
    community, _ = place
    user = await make_user(community=community)
    token = await _token(client, user)
    form = {**REGISTRATION, "community_id": str(community.id), "csrf_token": token}
    refused = await client.post("/h5/party/register", data={**form, "work_unit": "税务局\x00"})
    assert refused.status_code == 422 and "工作单位不能包含控制字符" in refused.text
    assert await PartyRegistration.all().count() == 0
    # One over the column is the service's message on the form, the column's length goes in.
    long = await client.post("/h5/party/register", data={**form, "name": "字" * 33})
    assert long.status_code == 422 and "姓名不能超过 32 个字" in long.text
    done = await client.post("/h5/party/register", data={**form, "name": "字" * 32})
    assert done.status_code == 303 and await PartyRegistration.all().count() == 1


@pytest.mark.parametrize("moment", ["0001-01-01T00:00", "9999-12-31T23:59", "2100-01-01T00:00"])
async def test_the_h5_record_form_refuses_far_times(
    client: httpx.AsyncClient, place, moment: str
) -> None:
    community, staff = place
    member, _ = await make_member(community, staff)
    token = await _token(client, staff)
    response = await client.post(
        "/h5/party/staff/records",
        data={
            "csrf_token": token,
            "community_id": str(community.id),
            "user_id": str(member.id),
            "task": "防汛值守",
            "started_at": moment,
            "ended_at": "2026-03-01T11:00",
        },
    )
    assert response.status_code == 422 and "时间须在 2000 年至 2099 年之间" in response.text
    assert await ServiceRecord.all().count() == 0


@pytest.mark.parametrize("day", EXTREME_DATES)
async def test_the_h5_report_page_refuses_far_dates(
    client: httpx.AsyncClient, place, day: str
) -> None:
    _, staff = place
    client.cookies.update(session_cookies(staff))
    for page in ("/h5/party/staff/report", "/h5/party/staff/report.xlsx"):
        response = await client.get(f"{page}?start_date={day}")
        assert response.status_code == 422 and "日期须在 2000 年至 2099 年之间" in response.text

"""Consents are spent one at a time by a guarded statement; refusals are remembered."""

from __future__ import annotations

import asyncio

import pytest

from backend.core.errors import Invalid
from backend.notices import consents
from backend.notices.models import DeliveryRefusal
from tests.factories import make_user

pytestmark = pytest.mark.usefixtures("db")


async def test_consents_are_never_spent_twice():
    user = await make_user()
    await consents.record_consent(user_id=user.id, template_key="notice", accepted=3)

    spent = await asyncio.gather(
        *(consents.spend_consent(user_id=user.id, template_key="notice") for _ in range(10))
    )

    assert spent.count(True) == 3
    assert await consents.consents_left(user_id=user.id, template_key="notice") == 0
    assert not await consents.spend_consent(user_id=user.id, template_key="notice")


async def test_returning_a_consent_makes_it_spendable_again():
    user = await make_user()
    await consents.record_consent(user_id=user.id, template_key="reminder", accepted=1)
    assert await consents.spend_consent(user_id=user.id, template_key="reminder")
    await consents.return_consent(user_id=user.id, template_key="reminder")
    assert await consents.consents_left(user_id=user.id, template_key="reminder") == 1


async def test_a_subscribe_refusal_clears_consents_until_the_user_accepts_again():
    user = await make_user()
    await consents.record_consent(user_id=user.id, template_key="wish", accepted=4)

    await consents.record_refusal(user_id=user.id, channel="subscribe", template_key="wish")
    await consents.record_refusal(user_id=user.id, channel="subscribe", template_key="wish")

    assert await consents.is_refused(user_id=user.id, channel="subscribe", template_key="wish")
    assert await DeliveryRefusal.filter(user_id=user.id).count() == 1
    assert await consents.consents_left(user_id=user.id, template_key="wish") == 0

    # Accepting in the mini-program again is a new yes.
    assert await consents.record_consent(user_id=user.id, template_key="wish", accepted=1) == 1
    assert not await consents.is_refused(user_id=user.id, channel="subscribe", template_key="wish")


async def test_a_template_refusal_stays():
    user = await make_user()
    await consents.record_refusal(user_id=user.id, channel="template", template_key="notice")
    await consents.record_consent(user_id=user.id, template_key="notice", accepted=1)
    assert await consents.is_refused(user_id=user.id, channel="template", template_key="notice")


async def test_record_consent_checks_its_arguments():
    user = await make_user()
    with pytest.raises(Invalid):
        await consents.record_consent(user_id=user.id, template_key="spam", accepted=1)
    with pytest.raises(Invalid):
        await consents.record_consent(user_id=user.id, template_key="notice", accepted=0)


async def test_consents_for_a_batch_are_taken_in_one_go_and_held_per_message():
    one, three, none = await make_user(), await make_user(), await make_user()
    await consents.record_consent(user_id=one.id, template_key="notice", accepted=1)
    await consents.record_consent(user_id=three.id, template_key="notice", accepted=3)
    await consents.record_consent(user_id=three.id, template_key="booking", accepted=1)
    wanted = [
        (101, one.id, "notice"),
        (102, one.id, "notice"),  # a second message: no consent left for it
        (201, three.id, "notice"),
        (202, three.id, "notice"),
        (203, three.id, "booking"),
        (301, none.id, "notice"),
    ]

    held = await consents.spend_consents(wanted=wanted)

    assert held == {101, 201, 202, 203}
    assert await consents.consents_left(user_id=one.id, template_key="notice") == 0
    assert await consents.consents_left(user_id=three.id, template_key="notice") == 1
    assert await consents.consents_left(user_id=three.id, template_key="booking") == 0
    # Asking again for the same messages takes nothing more.
    assert await consents.spend_consents(wanted=wanted) == held
    assert await consents.consents_left(user_id=three.id, template_key="notice") == 1


async def test_parallel_batches_never_overspend():
    users = [await make_user() for _ in range(5)]
    for user in users:
        await consents.record_consent(user_id=user.id, template_key="notice", accepted=2)
    batches = [
        [(1000 * b + n, user.id, "notice") for n, user in enumerate(users)] for b in range(1, 5)
    ]

    results = await asyncio.gather(*(consents.spend_consents(wanted=b) for b in batches))

    assert sum(len(r) for r in results) == 10  # two consents each, four batches wanting them
    for user in users:
        assert await consents.consents_left(user_id=user.id, template_key="notice") == 0

"""What the accounts service hands out when one ORM object does not say enough."""

from __future__ import annotations

from dataclasses import dataclass

from backend.accounts.models import User


@dataclass(frozen=True)
class Grant:
    role: str
    community_id: int | None


@dataclass(frozen=True)
class Profile:
    """A person as they see themselves: the phone masked, the roles resolved."""

    user: User
    phone: str | None
    roles: list[str]
    grants: list[Grant]

    # Pages read a profile like the user it describes.
    @property
    def id(self) -> int:
        return self.user.id

    @property
    def nickname(self) -> str:
        return self.user.nickname

    @property
    def community_id(self) -> int | None:
        return self.user.community_id

    @property
    def building_id(self) -> int | None:
        return self.user.building_id

    @property
    def unit_id(self) -> int | None:
        return self.user.unit_id

    @property
    def points_balance(self) -> int:
        return self.user.points_balance

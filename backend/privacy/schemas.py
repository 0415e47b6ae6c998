"""Request and response bodies of the privacy API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from backend.core.text import InModel

ExportFormat = Literal["json", "xlsx"]


class CloseAccountIn(InModel):
    confirm: str = Field(max_length=8, description="填写“注销”两个字，确认注销账号（不可恢复）")


class CloseAccountOut(BaseModel):
    closed_at: datetime


class ExportOut(BaseModel):
    """One list per section; the keys are those of backend.privacy.service.SECTIONS."""

    model_config = {"extra": "allow"}

    generated_at: datetime
    profile: list[dict[str, Any]]

"""TORTOISE_ORM for the `tortoise` CLI (`make migrations`)."""

from backend.core.config import get_settings
from backend.core.db import tortoise_config

TORTOISE_ORM = tortoise_config(get_settings())

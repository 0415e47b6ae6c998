"""Uploaded pictures (a wish's fulfilment photo, a reward's picture): what a file is, told
by its first bytes, and how big it may be.

Phones and mini-programs declare whatever content type they like (WeChat often sends
application/octet-stream), so the type that is stored and served back comes from the
content. A file that is not one of these images is refused before anyone is shown it.
"""

from __future__ import annotations

from backend.core.errors import Invalid

MAX_IMAGE_BYTES = 2 * 1024 * 1024
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")
_JPEG = b"\xff\xd8\xff"
_PNG = b"\x89PNG\r\n\x1a\n"


def image_type(content: bytes) -> str | None:
    """The content type of a JPG, PNG or WebP file, judged by its magic numbers; else None."""
    if content.startswith(_JPEG):
        return "image/jpeg"
    if content.startswith(_PNG):
        return "image/png"
    # RIFF alone is also WAV or AVI: a WebP names itself at bytes 8–12.
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return "image/webp"
    return None


def check_image(content: bytes, *, field: str, label: str) -> str:
    """The content type of an acceptable picture, or Invalid on `field` (shown as `label`)."""
    content_type = image_type(content)
    if content_type is None:
        raise Invalid(fields={field: f"{label}须为 JPG、PNG 或 WebP 图片"})
    if len(content) > MAX_IMAGE_BYTES:
        raise Invalid(fields={field: f"{label}不能超过 {MAX_IMAGE_BYTES // 2**20} MB"})
    return content_type

"""The one picture check that wish photos and reward pictures share."""

import pytest

from backend.core.errors import Invalid
from backend.core.images import MAX_IMAGE_BYTES, check_image, image_type

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16
JPEG = b"\xff\xd8\xff\xdb" + b"\x00" * 16
WEBP = b"RIFF\x10\x00\x00\x00WEBPVP8L" + b"\x00" * 16


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (PNG, "image/png"),
        (JPEG, "image/jpeg"),
        (WEBP, "image/webp"),
        (b"RIFF\x10\x00\x00\x00WAVEfmt ", None),  # a sound file is RIFF too
        (b"GIF89a" + b"\x00" * 16, None),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", None),
        (b"\x89PN", None),
        (b"", None),
    ],
)
def test_the_type_is_read_from_the_first_bytes(content, expected):
    assert image_type(content) == expected


def test_check_names_the_field_and_what_it_is():
    assert check_image(WEBP, field="photo", label="照片") == "image/webp"
    with pytest.raises(Invalid) as not_an_image:
        check_image(b"GIF89a", field="photo", label="照片")
    assert not_an_image.value.fields == {"photo": "照片须为 JPG、PNG 或 WebP 图片"}
    with pytest.raises(Invalid) as too_big:
        check_image(PNG + b"\x00" * MAX_IMAGE_BYTES, field="picture", label="礼品图片")
    assert too_big.value.fields == {"picture": "礼品图片不能超过 2 MB"}


def test_the_limit_itself_is_allowed():
    exactly = PNG + b"\x00" * (MAX_IMAGE_BYTES - len(PNG))
    assert check_image(exactly, field="photo", label="照片") == "image/png"

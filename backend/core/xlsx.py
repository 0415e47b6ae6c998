"""The one spreadsheet writer every staff export uses.

Staff open these files in Excel or WPS, and a cell that begins with `=`, `+`, `-`, `@`,
a tab or a carriage return would be read as a formula (CSV/formula injection, OWASP).
Every string is written as a text cell (and marked with Excel's quote prefix), so what a
resident typed can never run; numbers stay numbers, and datetimes and dates become real
Excel date cells in local time, so staff can sort and filter them.

    book = Spreadsheet()
    sheet = book.sheet("报名与签到", header=["昵称", "报名时间"], caption="舞韵瑜伽")
    sheet.append(["王阿姨", booking.created_at])
    return book.to_bytes()
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from openpyxl import Workbook
from openpyxl.cell.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from starlette.responses import Response

from backend.core.clock import local_zone
from backend.core.text import has_forbidden

MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
DATE_FORMAT = "yyyy-mm-dd"

_HEADER_FONT = Font(bold=True, color="FFFFFF")
_HEADER_FILL = PatternFill("solid", fgColor="C9302C")
_CAPTION_FONT = Font(bold=True, size=13)
_BOLD = Font(bold=True)


def _text(value: str) -> str:
    # Characters XML 1.0 cannot carry (openpyxl raises on them): older rows may predate
    # the input check, so an export drops them rather than failing.
    if has_forbidden(value):
        return "".join(ch for ch in value if not has_forbidden(ch))
    return value


class SheetWriter:
    """One sheet: an optional caption row, a header row, then data rows."""

    def __init__(self, book: Spreadsheet, sheet: Any) -> None:
        self._book = book
        self._sheet = sheet

    def _cell(self, value: Any, *, font: Font | None = None) -> WriteOnlyCell:
        zone = self._book.zone
        if isinstance(value, datetime):
            local = value.astimezone(zone) if value.tzinfo else value
            cell = WriteOnlyCell(self._sheet, value=local.replace(tzinfo=None))
            cell.number_format = DATETIME_FORMAT
        elif isinstance(value, date):
            cell = WriteOnlyCell(self._sheet, value=value)
            cell.number_format = DATE_FORMAT
        elif isinstance(value, bool):
            cell = WriteOnlyCell(self._sheet, value="是" if value else "否")
        elif isinstance(value, int | float | Decimal):
            cell = WriteOnlyCell(self._sheet, value=value)
        elif value is None:
            cell = WriteOnlyCell(self._sheet, value=None)
        else:
            cell = WriteOnlyCell(self._sheet, value=_text(str(value)))
            # openpyxl types a string that starts with "=" as a formula: force text.
            cell.data_type = "s"
            cell.quotePrefix = True
        if font is not None:
            cell.font = font
        return cell

    def append(self, values: Iterable[Any], *, bold: bool = False) -> None:
        """A data row (`bold` for a total row)."""
        font = _BOLD if bold else None
        self._sheet.append([self._cell(v, font=font) for v in values])

    def blank(self) -> None:
        self._sheet.append([])


class Spreadsheet:
    """A write-only workbook (rows stream out, so a large export stays small in memory)."""

    def __init__(self) -> None:
        self._book = Workbook(write_only=True)
        self.zone = local_zone()

    def sheet(
        self,
        title: str,
        *,
        header: Sequence[str] | None = None,
        caption: str | None = None,
        widths: Sequence[float] | None = None,
    ) -> SheetWriter:
        """A new sheet; column widths default to what the header needs."""
        sheet = self._book.create_sheet(title)
        writer = SheetWriter(self, sheet)
        names = list(header or [])
        for index, name in enumerate(names, start=1):
            width = widths[index - 1] if widths and index <= len(widths) else None
            sheet.column_dimensions[get_column_letter(index)].width = width or max(
                12, len(name) * 2 + 4
            )
        rows_above = (1 if caption else 0) + (1 if names else 0)
        if rows_above:
            sheet.freeze_panes = f"A{rows_above + 1}"
        if caption:
            sheet.append([writer._cell(caption, font=_CAPTION_FONT)])
        if names:
            cells = []
            for name in names:
                cell = writer._cell(name, font=_HEADER_FONT)
                cell.fill = _HEADER_FILL
                cell.alignment = Alignment(horizontal="center")
                cells.append(cell)
            sheet.append(cells)
        return writer

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        self._book.save(buffer)
        return buffer.getvalue()


# What may stand in the plain `filename=` of Content-Disposition: anything else (quotes,
# semicolons, CR/LF, non-ASCII) could break the header or be read differently by browsers.
_PLAIN_FILENAME = re.compile(r"[^A-Za-z0-9._-]")


def content_disposition(filename: str) -> str:
    """An attachment header for `filename`: an ASCII fallback and the RFC 5987 `filename*`."""
    stem, _, extension = filename.rpartition(".")
    plain = _PLAIN_FILENAME.sub("", stem).strip("._-") or "export"
    fallback = f"{plain}.{_PLAIN_FILENAME.sub('', extension) or 'xlsx'}"
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def xlsx_response(filename: str, data: bytes) -> Response:
    """The HTTP answer carrying an export (the API and the H5 pages alike)."""
    return Response(
        data,
        media_type=MEDIA_TYPE,
        headers={"Content-Disposition": content_disposition(filename), "Cache-Control": "no-store"},
    )

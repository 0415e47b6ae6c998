"""The one spreadsheet writer: typed text stays text, times become date cells in local
time, and the download header cannot be broken by a file name."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

from openpyxl import load_workbook

from backend.core.xlsx import MEDIA_TYPE, Spreadsheet, content_disposition, xlsx_response

FORMULAS = ["=1+1", "@SUM(A1)", '=HYPERLINK("http://x","y")', "+1", "-1+1", "\t=1", "\r=1"]


def _book(build) -> object:
    book = Spreadsheet()
    build(book)
    return load_workbook(io.BytesIO(book.to_bytes()))


def test_text_that_looks_like_a_formula_stays_text() -> None:
    def build(book: Spreadsheet) -> None:
        sheet = book.sheet("名单", header=["昵称", "=标题"], caption='=HYPERLINK("x")')
        for text in FORMULAS:
            sheet.append([text, text])

    loaded = _book(build)["名单"]
    rows = list(loaded.iter_rows())
    assert all(cell.data_type != "f" for row in rows for cell in row)
    assert rows[0][0].value == '=HYPERLINK("x")' and rows[1][1].value == "=标题"
    # Exactly what was typed (XML reads a carriage return back as a newline), with Excel's
    # quote prefix so it shows as text.
    assert [r[0].value for r in rows[2:]] == [f.replace("\r", "\n") for f in FORMULAS]
    assert all(r[0].quotePrefix for r in rows[2:])


def test_times_are_date_cells_in_local_time_and_numbers_stay_numbers() -> None:
    def build(book: Spreadsheet) -> None:
        sheet = book.sheet("明细", header=["时间", "日期", "积分", "是否", "空"])
        sheet.append([datetime(2026, 3, 1, 1, 30, tzinfo=UTC), date(2026, 3, 1), 5, True, None])
        sheet.append(["合计", None, 5, False, None], bold=True)

    loaded = _book(build)["明细"]
    moment, day, points, flag, empty = next(loaded.iter_rows(min_row=2, max_row=2))
    assert moment.is_date and moment.value == datetime(2026, 3, 1, 9, 30)
    assert moment.number_format == "yyyy-mm-dd hh:mm"
    assert day.is_date and day.value == datetime(2026, 3, 1) and day.number_format == "yyyy-mm-dd"
    assert points.value == 5 and points.data_type == "n"
    assert flag.value == "是" and empty.value is None
    total = next(loaded.iter_rows(min_row=3, max_row=3))
    assert total[0].font.b and total[2].value == 5


def test_header_and_caption_rows_are_frozen_and_styled() -> None:
    def build(book: Spreadsheet) -> None:
        book.sheet("一", header=["姓名"], caption="标题", widths=[30])
        book.sheet("二", header=["姓名"])

    loaded = _book(build)
    assert loaded.sheetnames == ["一", "二"]
    assert loaded["一"].freeze_panes == "A3" and loaded["二"].freeze_panes == "A2"
    assert loaded["一"]["A2"].font.b and loaded["一"].column_dimensions["A"].width == 30


def test_characters_xml_cannot_carry_are_dropped_rather_than_failing() -> None:
    def build(book: Spreadsheet) -> None:
        book.sheet("旧数据").append(["王\x00阿\x1b姨"])

    assert _book(build)["旧数据"]["A1"].value == "王阿姨"


def test_the_download_header_is_safe_for_any_file_name() -> None:
    assert content_disposition("points-datian-20260101-20260131.xlsx") == (
        'attachment; filename="points-datian-20260101-20260131.xlsx"; '
        "filename*=UTF-8''points-datian-20260101-20260131.xlsx"
    )
    chinese = content_disposition("党员名册.xlsx")
    assert chinese.startswith("attachment; filename=\"export.xlsx\"; filename*=UTF-8''%E5%85%9A")
    hostile = content_disposition('a"; b\r\nSet-Cookie: x.xlsx')
    assert "\r" not in hostile and "\n" not in hostile and hostile.count('"') == 2
    response = xlsx_response("党员名册.xlsx", b"PK")
    assert response.media_type == MEDIA_TYPE and response.body == b"PK"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-disposition"] == chinese

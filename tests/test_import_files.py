"""The file-reading layer of the import (rxcrm.services.import_files): pure, no database.

Every file is built by hand here: bytes for CSV and HTML, openpyxl for .xlsx, xlwt for BIFF."""
from __future__ import annotations

import tracemalloc
from datetime import date, datetime
from pathlib import Path

import openpyxl
import pytest

from rxcrm.services.errors import ValidationFailed
from rxcrm.services.import_files import FileError, FileInfo, rows, sniff, write_template, write_xlsx

LEAD_HEADERS = ["ID", "Название лида", "Имя", "Фамилия", "Рабочий телефон", "Мобильный телефон",
                "Рабочий e-mail", "Стадия", "Источник", "Ответственный", "Дата создания", "Сумма"]


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _all(path: Path, info: FileInfo, **kw) -> list[tuple[int, list]]:
    return list(rows(path, info, **kw))


# --- CSV ------------------------------------------------------------------------------------

def test_bitrix_leads_csv_in_windows_1251(tmp_path):
    text = (";".join(LEAD_HEADERS) + "\r\n"
            '1;"Заявка; с сайта";Иван;Петров;+7 (495) 123-45-67;89161234567;ivan@example.ru;'
            'Новый;Веб-сайт;Анна Смирнова;01.03.2024 10:15:00;15000\r\n'
            '2;"Звонок\r\nповторный";Мария;Иванова;;+79031112233;;В работе;Звонок;'
            'Анна Смирнова;02.03.2024 11:00:00;0\r\n')
    path = _write(tmp_path, "LEAD.csv", text.encode("cp1251"))

    info = sniff(path, "LEAD.csv")
    assert (info.kind, info.encoding, info.delimiter) == ("csv", "cp1251", ";")
    assert info.headers == LEAD_HEADERS
    assert info.rows_estimate == 2
    assert info.creator == ""
    assert info.preview[0][1] == "Заявка; с сайта"

    got = _all(path, info)
    assert [n for n, _ in got] == [2, 3]  # records, not lines: row 3 holds a newline
    assert got[0][1] == ["1", "Заявка; с сайта", "Иван", "Петров", "+7 (495) 123-45-67",
                         "89161234567", "ivan@example.ru", "Новый", "Веб-сайт", "Анна Смирнова",
                         "01.03.2024 10:15:00", "15000"]
    assert got[1][1][1] == "Звонок\r\nповторный"
    assert got[1][1][4] == "" and got[1][1][5] == "+79031112233"


def test_utf8_bom_and_comma(tmp_path):
    path = _write(tmp_path, "a.csv", "\ufeffИмя,Телефон\nЮлия,\"+7 900, доб. 12\"\n".encode())
    info = sniff(path, "a.csv")
    assert (info.encoding, info.delimiter) == ("utf-8-sig", ",")
    assert info.headers == ["Имя", "Телефон"]
    assert _all(path, info) == [(2, ["Юлия", "+7 900, доб. 12"])]


def test_utf16_bom_and_tab(tmp_path):
    path = _write(tmp_path, "a.txt", "Имя\tEmail\nПётр\tp@example.ru\n".encode("utf-16"))
    info = sniff(path, "a.txt")
    assert (info.kind, info.encoding, info.delimiter) == ("csv", "utf-16", "\t")
    assert _all(path, info) == [(2, ["Пётр", "p@example.ru"])]


def test_utf8_decided_over_the_whole_file(tmp_path):
    ascii_rows = "".join(f"{i};name{i}\n" for i in range(120_000))  # > 1 MB of ASCII
    path = _write(tmp_path, "a.csv", ("ID;Name\n" + ascii_rows + "999;Ёжик\n").encode())
    assert path.stat().st_size > 1 << 20
    info = sniff(path, "a.csv")
    assert info.encoding == "utf-8"
    assert _all(path, info, start=120_001) == [(120_002, ["999", "Ёжик"])]


def test_cp1251_only_at_the_end(tmp_path):
    ascii_rows = "".join(f"{i};name{i}\n" for i in range(120_000))
    path = _write(tmp_path, "a.csv", ("ID;Name\n" + ascii_rows + "999;Ёжик\n").encode("cp1251"))
    info = sniff(path, "a.csv")
    assert info.encoding == "cp1251"
    assert info.rows_estimate == 120_001
    assert _all(path, info, start=120_001) == [(120_002, ["999", "Ёжик"])]


def test_explicit_encoding_and_delimiter(tmp_path):
    path = _write(tmp_path, "a.csv", "Имя|Город\nОля|Тверь, центр\n".encode("cp1251"))
    info = sniff(path, "a.csv", encoding="Windows-1251", delimiter="|")
    assert (info.encoding, info.delimiter) == ("cp1251", "|")
    assert _all(path, info) == [(2, ["Оля", "Тверь, центр"])]
    # a wrong override is obeyed: the row is split by "," instead
    forced = sniff(path, "a.csv", encoding="cp1251", delimiter=",")
    assert forced.headers == ["Имя|Город"]
    assert _all(path, forced) == [(2, ["Оля|Тверь"])]


@pytest.mark.parametrize("alias", ["tab", "TAB", "\\t", "\t"])
def test_tab_aliases(tmp_path, alias):
    path = _write(tmp_path, "a.csv", b"a\tb\n1\t2\n")
    assert sniff(path, "a.csv", delimiter=alias).delimiter == "\t"


@pytest.mark.parametrize("kw", [{"encoding": "klingon"}, {"encoding": "base64"}, {"delimiter": ":"}])
def test_bad_override(tmp_path, kw):
    path = _write(tmp_path, "a.csv", b"a;b\n1;2\n")
    with pytest.raises(FileError):
        sniff(path, "a.csv", **kw)


def test_explicit_utf8_on_cp1251_names_the_row(tmp_path):
    path = _write(tmp_path, "a.csv", "a;b\n1;x\n2;Дом\n".encode("cp1251"))
    with pytest.raises(FileError) as err:
        sniff(path, "a.csv", encoding="utf-8")
    assert err.value.message == "Строка 3: файл не в кодировке UTF-8 — выберите Windows-1251"
    assert isinstance(err.value, ValidationFailed)


def test_delimiter_counted_outside_quotes_and_over_records(tmp_path):
    # the header has more commas than semicolons, the records say ";"
    text = "Имя, фамилия;Телефон, рабочий;Email, личный\nИван Петров;+7 999;ivan@x.ru\n"
    path = _write(tmp_path, "a.csv", text.encode())
    assert sniff(path, "a.csv").delimiter == ";"
    quoted = '"a,b,c";d\n"e,f,g";h\n'
    assert sniff(_write(tmp_path, "b.csv", quoted.encode()), "b.csv").delimiter == ";"


def test_empty_file_and_header_only(tmp_path):
    for data in (b"", b"\r\n  \r\n;;\r\n"):
        with pytest.raises(FileError, match="Файл пуст"):
            sniff(_write(tmp_path, "e.csv", data), "e.csv")
    path = _write(tmp_path, "h.csv", b"a;b\n")
    info = sniff(path, "h.csv")
    assert (info.headers, info.preview, info.rows_estimate) == (["a", "b"], [], 0)
    assert _all(path, info) == []


def test_blank_headers_short_long_and_empty_rows(tmp_path):
    text = "\n ID ;;Имя;\n1;x;Аня\n\n;;\n2\n3;y;Боря;лишнее;ещё\n"
    path = _write(tmp_path, "a.csv", text.encode())
    info = sniff(path, "a.csv")
    assert info.headers == ["ID", "Колонка 2", "Имя"]  # trailing blank header dropped
    assert info.rows_estimate == 3
    assert info.preview == [["1", "x", "Аня"], ["2", "", ""], ["3", "y", "Боря"]]
    assert _all(path, info) == [(3, ["1", "x", "Аня"]), (6, ["2", "", ""]), (7, ["3", "y", "Боря"])]
    assert _all(path, info, start=3) == [(6, ["2", "", ""]), (7, ["3", "y", "Боря"])]


def test_nul_removed_and_values_stripped(tmp_path):
    path = _write(tmp_path, "a.csv", b"a;b\n x\x00y ;\t z \n")
    info = sniff(path, "a.csv")
    assert _all(path, info) == [(2, ["xy", "z"])]


def test_unclosed_quote_is_a_file_error(tmp_path):
    path = _write(tmp_path, "a.csv", b'a;b\n1;"' + b"x" * 200_000 + b"\n")
    with pytest.raises(FileError, match="Строка 2: не удалось разобрать строку"):
        sniff(path, "a.csv")


def test_kind_from_content_then_extension(tmp_path):
    with pytest.raises(FileError, match=r"Поддерживаются файлы \.csv, \.xlsx, \.xls"):
        sniff(_write(tmp_path, "a.pdf", b"%PDF-1.4"), "a.pdf")
    # a CSV named .dat is refused, an HTML named .dat is read
    html = "<table><tr><td>a</td></tr><tr><td>1</td></tr></table>".encode()
    assert sniff(_write(tmp_path, "b.dat", html), "b.dat").kind == "html"
    with pytest.raises(FileError, match="Не удалось прочитать файл"):
        sniff(_write(tmp_path, "c.xlsx", b"a;b\n1;2\n"), "c.xlsx")


# --- xlsx -----------------------------------------------------------------------------------

def _xlsx(tmp_path: Path, data: list[list], *, creator: str = "", formats: dict | None = None) -> Path:
    wb = openpyxl.Workbook()
    ws = wb.active
    for r, row in enumerate(data, 1):
        for c, value in enumerate(row, 1):
            if value is not None:
                ws.cell(r, c, value)
    for coordinate, number_format in (formats or {}).items():
        ws[coordinate].number_format = number_format
    wb.properties.creator = creator
    path = tmp_path / "a.xlsx"
    wb.save(path)
    return path


def test_xlsx_typed_cells_and_creator(tmp_path):
    path = _xlsx(tmp_path, [
        ["Телефон", "Дата", "Создан", "Сумма", "Кол-во", "Имя", None, "Активен"],
        ["007123", date(2024, 3, 5), datetime(2024, 3, 5, 14, 30), 1234.5, 3, "  Анна ", None, True],
        [],
        ["+7 900 000-00-00", None, None, None, None, "Пётр"],
    ], creator="rxcrm", formats={"B2": "DD.MM.YYYY", "C2": "DD.MM.YYYY HH:MM"})
    info = sniff(path, "export.xlsx")
    assert (info.kind, info.encoding, info.delimiter, info.creator) == ("xlsx", "", "", "rxcrm")
    assert info.headers == ["Телефон", "Дата", "Создан", "Сумма", "Кол-во", "Имя", "Колонка 7", "Активен"]
    assert info.rows_estimate == 2
    assert info.preview[0] == ["007123", "05.03.2024", "05.03.2024 14:30", "1234.5", "3", "Анна", "", "Да"]

    got = _all(path, info)
    assert got[0] == (2, ["007123", date(2024, 3, 5), datetime(2024, 3, 5, 14, 30), 1234.5, 3, "Анна", "",
                          True])
    assert type(got[0][1][1]) is date and type(got[0][1][4]) is int
    assert got[1] == (4, ["+7 900 000-00-00", "", "", "", "", "Пётр", "", ""])
    assert _all(path, info, start=2) == got[1:]


def test_xlsx_first_rows_blank_and_dimension_estimate(tmp_path):
    data = [[], [], ["ID", "Имя"]] + [[i, f"n{i}"] for i in range(1, 31)]
    path = _xlsx(tmp_path, data)
    info = sniff(path, "a.xlsx")
    assert info.headers == ["ID", "Имя"]
    assert info.rows_estimate == 30
    got = _all(path, info)
    assert got[0] == (4, [1, "n1"]) and got[-1] == (33, [30, "n30"])


def test_xlsx_creator_default_and_not_a_workbook(tmp_path):
    path = _xlsx(tmp_path, [["a"], [1]], creator="Microsoft Excel")
    assert sniff(path, "a.xlsx").creator == "Microsoft Excel"
    zip_not_xlsx = _write(tmp_path, "z.xlsx", b"PK\x03\x04" + b"\0" * 100)
    with pytest.raises(FileError, match="Не удалось прочитать файл"):
        sniff(zip_not_xlsx, "z.xlsx")


# --- BIFF .xls ------------------------------------------------------------------------------

def test_biff_xls(tmp_path):
    xlwt = pytest.importorskip("xlwt", reason="xlwt (a test dependency) writes the BIFF file")
    book = xlwt.Workbook()
    sheet = book.add_sheet("Лиды")
    for c, header in enumerate(["Имя", "Телефон", "Дата", "Сумма", "Доля"]):
        sheet.write(0, c, header)
    date_style = xlwt.easyxf(num_format_str="DD.MM.YYYY")
    sheet.write(1, 0, " Анна ")
    sheet.write(1, 1, "007")
    sheet.write(1, 2, date(2024, 3, 5), date_style)
    sheet.write(1, 3, 1500)
    sheet.write(1, 4, 0.25)
    sheet.write(3, 0, "Пётр")
    path = tmp_path / "old.xls"
    book.save(str(path))

    info = sniff(path, "old.xls")
    assert (info.kind, info.encoding, info.rows_estimate) == ("xls", "", 2)
    assert info.preview[0] == ["Анна", "007", "05.03.2024", "1500", "0.25"]
    assert _all(path, info) == [(2, ["Анна", "007", date(2024, 3, 5), 1500, 0.25]),
                                (4, ["Пётр", "", "", "", ""])]


def test_biff_signature_and_damaged_xls(tmp_path):
    path = _write(tmp_path, "bad.bin", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600)
    with pytest.raises(FileError, match="Не удалось прочитать файл"):
        sniff(path, "bad.bin")  # recognised as BIFF by content (not by the name), xlrd fails


# --- HTML .xls (Bitrix24 «Экспорт в Excel») --------------------------------------------------

def _bitrix_html(charset: str) -> str:
    return (f'<meta http-equiv="Content-type" content="text/html;charset={charset}" />\n'
            '<style>td {mso-number-format:\\@;}</style>\n'
            '<table border="1">\n<thead>\n'
            '<tr><th>ID</th><th>Название лида</th><th>Комментарий</th><th>Сумма</th></tr>\n'
            '</thead>\n<tbody>\n'
            '<tr><td>1</td><td>Рога &amp; копыта</td><td>первая строка<br>вторая\n  строка</td>'
            '<td>15 000</td></tr>\n'
            '<tr></tr>\n'
            '<tr><td>2</td><td>ООО &laquo;Ромашка&raquo;</td><td>&nbsp;</td><td></td></tr>\n'
            '</tbody>\n</table>\n')


@pytest.mark.parametrize("charset, codec", [("utf-8", "utf-8"), ("windows-1251", "cp1251")])
def test_bitrix_html_xls(tmp_path, charset, codec):
    path = _write(tmp_path, "LEAD.xls", _bitrix_html(charset).encode(codec))
    info = sniff(path, "LEAD.xls")
    assert (info.kind, info.encoding, info.delimiter) == ("html", codec, "")
    assert info.headers == ["ID", "Название лида", "Комментарий", "Сумма"]
    assert info.rows_estimate == 2
    assert _all(path, info) == [
        (2, ["1", "Рога & копыта", "первая строка\nвторая строка", "15 000"]),
        (4, ["2", "ООО «Ромашка»", "", ""]),
    ]


def test_html_without_meta_and_omitted_end_tags(tmp_path):
    html = "<html><body><table><tr><th>a<th>b<tr><td>Ёж<td>1</table></body></html>"
    path = _write(tmp_path, "a.xls", html.encode("cp1251"))
    info = sniff(path, "a.xls")
    assert info.encoding == "cp1251"
    assert _all(path, info) == [(2, ["Ёж", "1"])]


# --- streaming ------------------------------------------------------------------------------

def test_200k_rows_stream_in_flat_memory(tmp_path):
    path = tmp_path / "big.csv"
    with path.open("w", encoding="cp1251", newline="") as f:
        f.write(";".join(LEAD_HEADERS) + "\r\n")
        for i in range(200_000):
            f.write(f'{i};"Лид {i}; сайт";Иван;Петров;+7495{i:07d};;i{i}@example.ru;Новый;Сайт;'
                    f"Анна Смирнова;01.03.2024 10:15:00;{i * 10}\r\n")
    assert path.stat().st_size > 20 << 20

    tracemalloc.start()
    try:
        info = sniff(path, "big.csv")
        count = last = 0
        for last, values in rows(path, info):
            count += 1
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (info.encoding, info.delimiter) == ("cp1251", ";")
    assert info.rows_estimate == count == 200_000
    assert last == 200_001 and values[1] == "Лид 199999; сайт"
    assert peak < 20 << 20, f"peak {peak / 2**20:.1f} MB"


# --- writers --------------------------------------------------------------------------------

def test_write_xlsx_round_trip_keeps_text(tmp_path):
    path = tmp_path / "errors.xlsx"
    data = [["00123", "+7 900 000-00-00", 42, date(2024, 3, 5), "=1+1", "Ошибка\nв две строки"],
            [None, "007", 1.5, True, "\x01bad", ""]]
    write_xlsx(path, ["Код", "Телефон", "Число", "Дата", "Формула", "Ошибка"], iter(data))

    wb = openpyxl.load_workbook(path)
    ws = wb.active
    assert ws.title == "Ошибки" and ws.freeze_panes == "A2"
    assert ws["A1"].font.b
    got = [[c.value for c in row] for row in ws.iter_rows()]
    assert got[0] == ["Код", "Телефон", "Число", "Дата", "Формула", "Ошибка"]
    assert got[1] == ["00123", "+7 900 000-00-00", "42", "05.03.2024", "=1+1", "Ошибка\nв две строки"]
    assert got[2] == [None, "007", "1.5", "Да", "bad", None]
    assert ws["A3"].number_format == "@"  # an empty cell stays text for the person who fills it
    assert all(c.data_type == "s" for row in ws.iter_rows(min_row=2) for c in row if c.value)
    assert ws.column_dimensions["B"].width >= len("+7 900 000-00-00")

    info = sniff(path, "errors.xlsx")  # and our importer reads it back as typed
    assert _all(path, info)[0][1][:2] == ["00123", "+7 900 000-00-00"]


def test_write_template(tmp_path):
    path = tmp_path / "template.xlsx"
    write_template(path, ["Имя", "Телефон"], ["Иван", "+79001234567"])
    info = sniff(path, "template.xlsx")
    assert info.headers == ["Имя", "Телефон"]
    assert info.preview == [["Иван", "+79001234567"]]
    write_template(path, ["Имя"])
    assert sniff(path, "template.xlsx").rows_estimate == 0

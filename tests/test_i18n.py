"""The English catalog is complete and every label the UI asks for exists."""
from __future__ import annotations

import re

import pytest
from pathlib import Path

from rxcrm import i18n

ROOT = Path(__file__).resolve().parents[1] / "rxcrm"


def test_catalogs_have_the_same_keys_and_no_blanks():
    assert set(i18n.RU) == set(i18n.EN)
    for lang, cat in i18n.CATALOGS.items():
        assert all(v.strip() for v in cat.values()), lang


def test_english_catalog_is_translated():
    same = [k for k in i18n.RU if i18n.RU[k] == i18n.EN[k] and k not in {"app.name", "nav.section.crm"}]
    assert same == []


def test_every_key_used_in_the_ui_exists():
    used = set()
    for path in ROOT.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        used |= set(re.findall(r'\bt\["([a-z_.]+)"\]', text)) | set(re.findall(r'\b_tr\("([a-z_.]+)"', text))
    # keys passed through tables (e.g. SECTIONS) as plain strings
    for path in (ROOT / "pages").rglob("*.py"):
        used |= {k for k in re.findall(r'"((?:page|nav|common)\.[a-z_.]+)"', path.read_text(encoding="utf-8"))}
    assert used, "no labels found: the scan is broken"
    assert sorted(used - set(i18n.RU)) == []


# ---- no Russian literal in the UI code: every label goes through the catalog ----------
UI_DIRS = ("pages", "components", "state")
CYRILLIC = re.compile(r"[А-Яа-яЁё]")


def _docstring_lines(tree) -> set[int]:
    import ast
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                lines.update(range(first.lineno, first.end_lineno + 1))
    return lines


def russian_literals(path: Path) -> list[str]:
    """The string literals of `path` (not docstrings, not comments) with Cyrillic letters."""
    import ast
    import io
    import tokenize
    source = path.read_text(encoding="utf-8")
    docs = _docstring_lines(ast.parse(source))
    found = []
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in (tokenize.STRING, getattr(tokenize, "FSTRING_MIDDLE", -1)) \
                and tok.start[0] not in docs and CYRILLIC.search(tok.string):
            found.append(f"{path.relative_to(ROOT)}:{tok.start[0]}: {tok.string[:60]}")
    return found


UI_FILES = sorted(p for d in UI_DIRS for p in (ROOT / d).rglob("*.py"))


def test_the_literal_scan_sees_russian_text(tmp_path):
    sample = ROOT / "state" / "_scan_probe.py"
    try:
        sample.write_text('"""Докстринг."""\n# комментарий\nLABEL = "Сделки"\nX = f"{1} сделок"\n',
                          encoding="utf-8")
        assert [line.split(": ", 1)[1] for line in russian_literals(sample)] == ['"Сделки"', 'f"{1} сделок"']
    finally:
        sample.unlink()


@pytest.mark.parametrize("path", UI_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_russian_literal_in_ui_code(path):
    assert russian_literals(path) == []

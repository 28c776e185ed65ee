"""The bibliography's labels read as names and years (book/_ext/bibstyle.py), and its entries link out."""
from __future__ import annotations

import sys
from pathlib import Path

from pybtex.database import parse_file, parse_string

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "book" / "_ext"))
import bibstyle  # noqa: E402

BIB = """
@article{a, author = {He, Kaiming and Zhang, Xiangyu and Ren, Shaoqing}, title = {B}, journal = {J}, year = {2016}}
@article{b, author = {He, Kaiming and Zhang, Xiangyu and Ren, Shaoqing}, title = {A}, journal = {J}, year = {2016}}
@article{c, author = {Simonyan, Karen and Zisserman, Andrew}, title = {C}, journal = {J}, year = {2015}}
@article{d, author = {Bottou, L{\\'e}on}, title = {D}, journal = {J}, year = {1998}}
"""


def labels(bib: str) -> dict[str, str]:
    entries = parse_string(bib, "bibtex").entries
    style = bibstyle.AuthorYearStyle()
    return {entry.key: entry.label for entry in style.format_entries(entries.values())}


def test_author_year_labels_with_letters_for_twins():
    assert labels(BIB) == {"a": "He et al. 2016b", "b": "He et al. 2016a",
                           "c": "Simonyan and Zisserman 2015", "d": "Bottou 1998"}


def test_every_book_entry_has_a_unique_label_and_modern_papers_a_link():
    entries = parse_file(ROOT / "book" / "references.bib").entries
    style = bibstyle.AuthorYearStyle()
    found = {entry.key: entry.label for entry in style.format_entries(entries.values())}
    assert len(set(found.values())) == len(found) == len(entries)
    unlinked = [key for key, entry in entries.items()
                if not {"doi", "eprint", "url"} & {f.lower() for f in entry.fields}]
    assert unlinked == ["krizhevsky2012imagenet"]  # NeurIPS 2012 has neither a DOI nor an arXiv id

"""A Sphinx extension: bibliography entries labelled by author and year, "[He et al. 2016a]".

sphinxcontrib-bibtex's styles label entries "[HZRS16]" (alpha) or "[1]" (plain); a reader of this book
sees author-year citations in the text ("He et al. [2016]"), so the bibliography uses the same names.
Registered as the pybtex styles "authoryear" (labels) and "authoryear" (formatting: pybtex's unsrt
with these labels, sorted by author, year and title); `_config.yml` selects it with
`bibtex_default_style: authoryear`. DOIs, URLs and arXiv ids are linked by pybtex's own formatting.
"""
from __future__ import annotations

from collections import Counter
from string import ascii_lowercase

from pybtex.plugin import register_plugin
from pybtex.richtext import Text
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle


def _surname(person) -> str:
    """A person's last name in plain text: "{\\'e}" becomes "é", braces go."""
    return Text.from_latex(" ".join(person.prelast_names + person.last_names)).render_as("text")


def base_label(entry) -> str:
    """ "LeCun et al. 1998", "Simonyan and Zisserman 2015", "Krizhevsky 2012"."""
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [_surname(p) for p in people]
    if len(names) > 2:
        who = f"{names[0]} et al."
    elif len(names) == 2:
        who = f"{names[0]} and {names[1]}"
    else:
        who = names[0] if names else entry.key
    return f"{who} {entry.fields.get('year', 'n.d.')}"


class AuthorYearLabelStyle(BaseLabelStyle):
    """Author-year labels, made unique by a letter where two entries would share one (2016a, 2016b)."""

    def format_labels(self, sorted_entries):
        entries = list(sorted_entries)
        labels = [base_label(entry) for entry in entries]
        shared = Counter(labels)
        seen: Counter = Counter()
        for label in labels:
            if shared[label] > 1:
                seen[label] += 1
                label += ascii_lowercase[seen[label] - 1]
            yield label


class AuthorYearStyle(UnsrtStyle):
    """pybtex's unsrt formatting, with author-year labels, sorted by author, year and title."""

    default_label_style = "authoryear"
    default_sorting_style = "author_year_title"


register_plugin("pybtex.style.labels", "authoryear", AuthorYearLabelStyle)
register_plugin("pybtex.style.formatting", "authoryear", AuthorYearStyle)


def setup(app):
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}

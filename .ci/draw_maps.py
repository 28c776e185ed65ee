"""Write the landing page's chapter maps, book/_static/map_*.svg, from lib.visualize.diagrams.

    python .ci/draw_maps.py          # from the repository root

The maps of chapters 1 to 5 are drawn from the same layer lists that tests/test_diagrams.py holds
against the built models; the appendix's is the ring all-reduce. The maps of the introduction and
the comparison (map_00_introduction.svg, map_06_comparison.svg) plot measurements of the five
networks instead, made on the models of lib.models when this runs (diagrams.overview: receptive
fields from lib.receptive_field, parameters and multiply-adds from lib.inspection.describe). All
are stored as reproducible SVG (lib.visualize.formats.render_svg: no date, fixed ids, text as
paths); the same test checks that the stored files are what this script draws now.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "book" / "_static"


def chapter_maps() -> dict[str, str]:
    """{file name: SVG text} for every map this script writes."""
    sys.path.insert(0, str(ROOT / "book"))
    import matplotlib

    matplotlib.use("agg")
    from lib.visualize import diagrams
    from lib.visualize.formats import render_svg

    maps = {f"map_{chapter}.svg": render_svg(diagrams.draw_chapter_map(network))
            for chapter, network in diagrams.maps.CHAPTERS.items()}
    maps["map_legend.svg"] = render_svg(diagrams.draw_map_legend())
    maps["map_07_distributed.svg"] = render_svg(diagrams.draw_ring_allreduce(4))  # the appendix
    maps["map_00_introduction.svg"] = render_svg(diagrams.draw_field_map())
    maps["map_06_comparison.svg"] = render_svg(diagrams.draw_cost_map())
    return maps


def main() -> None:
    for filename, svg in chapter_maps().items():
        (STATIC / filename).write_text(svg, encoding="utf-8")
        print(f"wrote book/_static/{filename} ({len(svg.encode('utf-8')):,} bytes)")


if __name__ == "__main__":
    main()

"""How a figure is stored in a notebook: sharp on any screen, light in the page.

The inline backend stores every figure as a PNG at the figure's dpi (100): soft on a high-resolution
screen. `figure_bundle` picks one format per figure instead, by this rule:

1. SVG, unless the figure's raster images (imshow) hold more than `SVG_MAX_IMAGE_PIXELS` source
   pixels (a photograph) or the SVG comes out over `SVG_MAX_BYTES` (many large images, tens of
   thousands of points) and heavier than the picture of rules 2 and 3. Curves, bars, a confusion matrix, kernels and grids of small images
   (digits, 32 x 32 colour images) are all SVG: sharp at any zoom. Images are embedded as their own
   pixels (a 28 x 28 digit as 28 x 28 pixels) and enlarged by the browser, see
   `_images_as_own_pixels`; SVG text also compresses about 3x when a server sends it gzipped;
2. otherwise a PNG at twice the dpi (`SCALE`), shown at its 1x size (the width and height go into
   the output's metadata, which Jupyter and jupyter-book honour);
3. and when that PNG is over `PNG_MAX_BYTES`, a JPEG of the same size (quality `JPEG_QUALITY`)
   replaces it if it is at most `JPEG_GAIN` of the PNG's bytes: photographs and smooth feature maps
   compress several times better as JPEG, while flat pictures and text stay PNG.

The outputs are reproducible, so re-executing a notebook does not rewrite its figures: the SVG carries
no date and its element ids come from a fixed `svg.hashsalt`. Text in an SVG is drawn as paths
(`svg.fonttype: path`), so it looks the same without the fonts installed.

`use_sharp_figures()` installs the rule as IPython's display formatter for matplotlib figures; the
package runs it on import, so every notebook that imports `lib` gets it. Outside IPython it does
nothing. `matplotlib_inline.backend_inline.set_matplotlib_formats(...)`, called afterwards, still
overrides it.
"""
from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import matplotlib
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

SVG, PNG, JPEG = "image/svg+xml", "image/png", "image/jpeg"
SVG_MAX_IMAGE_PIXELS = 200_000
SVG_MAX_BYTES = 150_000
PIXEL_INTERPOLATIONS = ("antialiased", "auto", "nearest", "none")
PNG_MAX_BYTES = 120_000
JPEG_GAIN = 0.6
JPEG_QUALITY = 80
SCALE = 2  # pixels per CSS pixel of the raster formats

# Rendering settings that make an SVG small and reproducible (applied only while rendering).
SVG_RC = {"svg.hashsalt": "cnnbook", "svg.fonttype": "path", "svg.image_inline": True}


def image_pixels(fig: Figure) -> int:
    """The number of source pixels (rows x columns) of the raster images drawn in `fig`."""
    if not isinstance(fig, Figure):
        raise TypeError(f"expected a matplotlib Figure, got {type(fig).__name__}")
    total = 0
    for artist in fig.findobj(AxesImage):
        if artist.get_visible() and artist.get_array() is not None:
            rows, cols = artist.get_array().shape[:2]
            total += rows * cols
    return total


def _render(fig: Figure, fmt: str, dpi: float, **options: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=dpi, bbox_inches="tight", facecolor=fig.get_facecolor(),
                edgecolor=fig.get_edgecolor(), **options)
    return buffer.getvalue()


def render_svg(fig: Figure) -> str:
    """`fig` as SVG text, reproducible (no date, fixed ids), its images embedded as their own pixels."""
    with matplotlib.rc_context(SVG_RC), _images_as_own_pixels(fig):
        data = _render(fig, "svg", fig.dpi * SCALE, metadata={"Date": None})
    return data.decode("utf-8")


@contextmanager
def _images_as_own_pixels(fig: Figure) -> Iterator[None]:
    """Draw the images of `fig` unresampled (interpolation "none") while it is saved as SVG.

    An SVG then embeds each image at its own size, e.g. 28 x 28 pixels for a digit, and the browser
    enlarges it without blur (matplotlib marks such images `image-rendering: pixelated`), instead of
    embedding a copy resampled at the figure's dpi: a tenth of the bytes, and sharp at any zoom. Only
    images drawn with matplotlib's default or nearest-neighbour interpolation are changed, which for
    enlarged images is what they show anyway; a smoothing interpolation chosen on purpose is kept.
    """
    changed = [image for image in fig.findobj(AxesImage)
               if image.get_interpolation() in PIXEL_INTERPOLATIONS]
    previous = [image.get_interpolation() for image in changed]
    try:
        for image in changed:
            image.set_interpolation("none")
        yield
    finally:
        for image, interpolation in zip(changed, previous):
            image.set_interpolation(interpolation)


def _raster(fig: Figure, fmt: str, **options: Any) -> tuple[bytes, dict[str, int]]:
    """`fig` at `SCALE` times its dpi, and the metadata that shows it at its 1x size."""
    from PIL import Image  # matplotlib depends on Pillow

    data = _render(fig, fmt, fig.dpi * SCALE, **options)
    width, height = Image.open(io.BytesIO(data)).size
    return data, {"width": width // SCALE, "height": height // SCALE}


def figure_bundle(fig: Figure) -> tuple[str, Any, dict[str, int] | None]:
    """The mime type, data and metadata under which `fig` is stored, by the rule of the module docstring.

    Returns:
        (mime type, data, metadata): SVG text with no metadata, or base64 text of a PNG or JPEG with
        its display width and height.

    Raises:
        TypeError: if `fig` is not a matplotlib Figure.
    """
    pixels = image_pixels(fig)
    svg = render_svg(fig) if pixels <= SVG_MAX_IMAGE_PIXELS else None
    if svg is not None and len(svg.encode("utf-8")) <= SVG_MAX_BYTES:
        return SVG, svg, None
    mime, raster, size = PNG, *_raster(fig, "png")
    if pixels and len(raster) > PNG_MAX_BYTES:
        jpeg, _ = _raster(fig, "jpeg", pil_kwargs={"quality": JPEG_QUALITY, "optimize": True})
        if len(jpeg) <= JPEG_GAIN * len(raster):
            mime, raster = JPEG, jpeg
    if svg is not None and len(svg.encode("utf-8")) <= len(raster):
        return SVG, svg, None  # over SVG_MAX_BYTES, but still lighter than the picture
    return mime, base64.b64encode(raster).decode("ascii"), size


def _is_empty(fig: Figure) -> bool:
    return not fig.axes and not fig.lines  # as IPython's own formatter: an empty figure shows nothing


def _figure_formatters_set_elsewhere(shell: Any) -> bool:
    """True once someone registered a per-format figure formatter after us, e.g. with
    `set_matplotlib_formats("png")`: that choice wins, and our bundle steps aside."""
    for mime in (SVG, PNG, JPEG, "application/pdf"):
        try:
            shell.display_formatter.formatters[mime].lookup_by_type(Figure)
            return True
        except KeyError:
            continue
    return False


def use_sharp_figures(shell: Any = None) -> bool:
    """Make IPython store matplotlib figures by this module's rule. Returns False outside IPython.

    The rule is registered as the figure's mime-bundle formatter, so one call renders one format
    (the per-format formatters would each render the figure again).

    Args:
        shell: an IPython shell; by default the running one.
    """
    if shell is None:
        try:
            from IPython import get_ipython
        except ImportError:
            return False
        shell = get_ipython()
    if shell is None or not hasattr(shell, "display_formatter"):
        return False
    _let_inline_backend_configure_first()
    for mime in (SVG, PNG, JPEG, "application/pdf"):
        shell.display_formatter.formatters[mime].pop(Figure, None)

    def bundle(fig: Figure):
        if _is_empty(fig) or _figure_formatters_set_elsewhere(shell):
            return None
        mime, data, metadata = figure_bundle(fig)
        return {mime: data}, ({mime: metadata} if metadata else {})

    shell.display_formatter.mimebundle_formatter.for_type(Figure, bundle)
    return True


def _let_inline_backend_configure_first() -> None:
    """Start the inline backend now, if it is the backend, so that it does not replace our formatter later.

    matplotlib_inline registers its own PNG formatter when its module is first imported, which pyplot
    does lazily, at the first figure; importing it here makes that happen before ours is installed.
    """
    # Read the backend without resolving it: matplotlib.get_backend() would start one itself.
    backend = str(matplotlib.rcParams._get("backend"))
    if "matplotlib_inline" in backend or backend == "inline":
        import matplotlib_inline.backend_inline  # noqa: F401  (configures IPython on import)

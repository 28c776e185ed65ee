"""How figures are stored in the notebooks (lib.visualize.formats): SVG for plots, a 2x raster for photographs,
reproducible outputs, and an nbval configuration that does not compare SVG text."""
from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import matplotlib

matplotlib.use("agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from lib.visualize import formats  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def _curves(seed: int = 0):
    rng = np.random.default_rng(seed)
    fig, ax = plt.subplots(figsize=(5, 3))
    for k in range(3):
        ax.plot(np.cumsum(rng.random(30)), label=f"run {k}")
    ax.legend()
    plt.close(fig)
    return fig


def _grid_of_digits():
    fig, axes = plt.subplots(2, 8, figsize=(8, 2))
    rng = np.random.default_rng(0)
    for ax in axes.flat:
        digit = np.zeros((28, 28))
        digit[6:22, 12:16] = rng.random()  # a flat stroke, as real digits are: cheap to store
        ax.imshow(digit, cmap="gray", vmin=0, vmax=1)
        ax.axis("off")
    plt.close(fig)
    return fig


def _photograph():
    y, x = np.mgrid[0:480, 0:640] / 640.0
    rng = np.random.default_rng(0)
    photo = np.stack([np.sin(9 * x + 3 * y) ** 2, np.cos(7 * y) ** 2, x * y], axis=-1)
    photo = np.clip(photo + 0.05 * rng.standard_normal(photo.shape), 0, 1)  # grain, as in a photograph
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.imshow(photo)
    ax.set_title("a photograph")
    plt.close(fig)
    return fig


def _embedded_sizes(svg: str) -> list[tuple[int, int]]:
    found = re.findall(r'xlink:href="data:image/png;base64,([^"]+)"', svg)
    return [Image.open(io.BytesIO(base64.b64decode(data))).size for data in found]


def test_a_plot_is_an_svg_that_is_the_same_every_time():
    mime, svg, metadata = formats.figure_bundle(_curves())
    assert mime == formats.SVG and metadata is None
    assert svg.lstrip().startswith("<?xml") and "</svg>" in svg
    assert "<dc:date>" not in svg, "a date in the SVG would rewrite every figure on each re-execution"
    assert formats.figure_bundle(_curves())[1] == svg, "the same figure must give the same bytes"
    assert formats.figure_bundle(_curves(seed=1))[1] != svg


def test_small_images_are_embedded_as_their_own_pixels_and_left_as_they_were():
    fig = _grid_of_digits()
    before = [image.get_interpolation() for image in fig.findobj(matplotlib.image.AxesImage)]
    mime, svg, _ = formats.figure_bundle(fig)
    assert mime == formats.SVG
    assert _embedded_sizes(svg) == [(28, 28)] * 16, "each digit as 28 x 28 pixels, not resampled"
    assert "image-rendering:pixelated" in svg.replace(" ", "")
    assert [image.get_interpolation() for image in fig.findobj(matplotlib.image.AxesImage)] == before


def test_a_smoothing_interpolation_chosen_on_purpose_is_kept():
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.imshow(np.eye(8), interpolation="bilinear")
    plt.close(fig)
    svg = formats.render_svg(fig)
    assert _embedded_sizes(svg) and _embedded_sizes(svg)[0] != (8, 8), "resampled, as the caller asked"


def test_a_photograph_is_a_raster_at_twice_the_resolution_shown_at_its_1x_size():
    fig = _photograph()
    mime, data, metadata = formats.figure_bundle(fig)
    assert mime in (formats.JPEG, formats.PNG)
    width, height = Image.open(io.BytesIO(base64.b64decode(data))).size
    assert metadata == {"width": width // 2, "height": height // 2}
    assert abs(width / 2 - fig.get_figwidth() * fig.dpi) < 0.25 * fig.get_figwidth() * fig.dpi  # tight bbox
    assert mime == formats.JPEG, "a grainy photograph compresses far better as JPEG"
    assert len(base64.b64decode(data)) < 200_000


def test_image_pixels_counts_source_pixels_and_rejects_other_objects():
    assert formats.image_pixels(_curves()) == 0
    assert formats.image_pixels(_grid_of_digits()) == 16 * 28 * 28
    with pytest.raises(TypeError, match="matplotlib Figure"):
        formats.image_pixels(np.zeros((2, 2)))


def test_use_sharp_figures_does_nothing_outside_ipython():
    assert formats.use_sharp_figures() is False


def test_in_ipython_a_figure_displays_in_one_chosen_format_and_set_matplotlib_formats_still_wins():
    interactiveshell = pytest.importorskip("IPython.core.interactiveshell")
    shell = interactiveshell.InteractiveShell.instance()
    try:
        assert formats.use_sharp_figures(shell) is True
        data, metadata = shell.display_formatter.format(_curves())
        assert set(data) == {"text/plain", formats.SVG}
        data, metadata = shell.display_formatter.format(_photograph())
        assert set(data) == {"text/plain", formats.JPEG} and metadata[formats.JPEG]["width"] > 0
        # What set_matplotlib_formats("png") does: a per-format formatter registered afterwards wins.
        shell.display_formatter.formatters[formats.PNG].for_type(matplotlib.figure.Figure, lambda fig: "PNG")
        data, _ = shell.display_formatter.format(_curves())
        assert set(data) == {"text/plain", formats.PNG}
    finally:
        interactiveshell.InteractiveShell.clear_instance()


def test_nbval_does_not_compare_the_text_of_svg_figures():
    """nbval compares image/svg+xml outputs as text (it skips only PNG and JPEG), and quick mode draws other
    numbers than the stored full-mode figures: tests/nbval_sanitize.cfg must reduce any SVG to one string."""
    plugin = pytest.importorskip("nbval.plugin")
    patterns = plugin.get_sanitize_patterns((ROOT / "tests" / "nbval_sanitize.cfg").read_text())

    def sanitize(text: str) -> str:
        for regex, replace in patterns:
            text = re.sub(regex, replace, text)
        return text

    one, other = formats.render_svg(_curves()), formats.render_svg(_curves(seed=1))
    assert one != other and sanitize(one) == sanitize(other)
    assert len(sanitize(one)) < 300


def test_an_svg_over_the_limit_is_kept_when_the_picture_would_be_heavier(monkeypatch):
    monkeypatch.setattr(formats, "SVG_MAX_BYTES", 1_000)  # every SVG is now "heavy"
    mime, svg, _ = formats.figure_bundle(_curves())
    assert mime == formats.SVG, "a few curves: the SVG is still lighter than a 2x PNG of them"
    monkeypatch.setattr(formats, "SVG_MAX_IMAGE_PIXELS", 10**9)  # let the photograph be tried as SVG too
    assert formats.figure_bundle(_photograph())[0] == formats.JPEG

"""The review page: self-contained, escaped, and really visible in a headless Chromium.

Chromium comes from the Debian package `chromium` (`apt-get install -y chromium`); without it the browser
tests skip and say so.
"""

from __future__ import annotations

import html as html_lib
import json
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from generator.commands import review
from requirements_spec import presets

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed (Debian: apt-get install -y chromium)"
)
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz `dot` is not installed")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]
PROBE = """<script>
window.addEventListener('load', () => {
  const size = (e) => { const r = e.getBoundingClientRect(); return [Math.round(r.width), Math.round(r.height)]; };
  const out = {
    diagrams: [...document.querySelectorAll('figure.diagram img')].map(
      (i) => ({id: i.parentElement.id, natural: i.naturalWidth, size: size(i), complete: i.complete})),
    table: size(document.getElementById('decisions-table')),
    rows: [...document.querySelectorAll('#decisions-table tbody tr')].filter((r) => size(r)[1] > 0).length,
  };
  const pre = document.createElement('pre');
  pre.id = 'archgen-probe';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("review") / "review.html"
    assert review.run(ROOT / "requirements_spec" / "presets" / "realtime.yaml", out) == 0
    return out


def test_page_is_self_contained(page: Path) -> None:
    html = page.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "url(" not in html and "@import" not in html
    assert "<script" not in html  # nothing runs; the CSP forbids it too
    assert "default-src 'none'" in html
    for section in ('id="diagrams"', 'id="decisions-table"', 'id="findings"', 'id="risks"'):
        assert section in html


@needs_dot
def test_page_inlines_both_diagrams_as_svg(page: Path) -> None:
    html = page.read_text(encoding="utf-8")
    assert html.count('<img src="data:image/svg+xml;base64,') == 2


def test_without_graphviz_the_page_shows_mermaid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("generator.views.diagrams.shutil.which", lambda name, *a, **k: None)
    out = tmp_path / "r.html"
    assert review.run(ROOT / "requirements_spec" / "presets" / "reference.yaml", out) == 0
    html = out.read_text(encoding="utf-8")
    assert html.count("flowchart LR") == 2 and "apt-get install graphviz" in html and "<img" not in html


def test_every_preset_makes_a_page(tmp_path: Path) -> None:
    for name in presets.names():
        spec = tmp_path / f"{name}.yaml"
        spec.write_text(presets.text(name), encoding="utf-8")
        assert review.run(spec, tmp_path / f"{name}.html") == 0
        assert "decisions-table" in (tmp_path / f"{name}.html").read_text(encoding="utf-8")


def _chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=90
    )


def _png_pixels(data: bytes) -> tuple[int, int, list[tuple[int, int, int]]]:
    """Decode an 8-bit RGB/RGBA non-interlaced PNG (what Chromium writes) into RGB pixels."""
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    pos, idat, width = 8, b"", 0
    height = depth = color = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert depth == 8 and color in (2, 6), (depth, color)
    bpp = 3 if color == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    prev = bytearray(stride)
    pixels: list[tuple[int, int, int]] = []
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        pixels += [(line[x], line[x + 1], line[x + 2]) for x in range(0, stride, bpp)]
        prev = line
    return width, height, pixels


@pytest.mark.slow
@needs_chromium
@needs_dot
def test_page_is_visible_in_headless_chromium(page: Path, tmp_path: Path) -> None:
    html = page.read_text(encoding="utf-8")
    # measuring copy: the page itself forbids scripts, so the probe goes into a copy without the CSP line
    probe = tmp_path / "probe.html"
    probe.write_text(
        re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html).replace("</body>", PROBE + "</body>"),
        encoding="utf-8",
    )
    result = _chromium(
        "--window-size=1400,1000", "--virtual-time-budget=5000", "--dump-dom", probe.as_uri(), profile=tmp_path / "p1"
    )
    found = re.search(r'<pre id="archgen-probe">(.*?)</pre>', result.stdout, re.S)
    assert found, result.stderr[-2000:]
    seen = json.loads(html_lib.unescape(found.group(1)))
    assert [d["id"] for d in seen["diagrams"]] == ["diagram-dataflow", "diagram-deployment"]
    for d in seen["diagrams"]:
        assert d["complete"] and d["natural"] > 300, d  # the SVG decoded
        assert d["size"][0] > 300 and d["size"][1] > 100, d  # and takes room on the page
    assert seen["table"][0] > 300 and seen["table"][1] > 100
    decisions = html.count("<tr>") - html.count("<thead><tr>")
    assert seen["rows"] >= 10 and seen["rows"] <= decisions

    shot = tmp_path / "shot.png"
    result = _chromium("--window-size=1200,1600", f"--screenshot={shot}", page.as_uri(), profile=tmp_path / "p2")
    assert shot.exists(), result.stderr[-2000:]
    width, height, pixels = _png_pixels(shot.read_bytes())
    assert (width, height) == (1200, 1600)
    lum = [0.299 * r + 0.587 * g + 0.114 * b for r, g, b in pixels[::7]]
    mean = sum(lum) / len(lum)
    std = (sum((v - mean) ** 2 for v in lum) / len(lum)) ** 0.5
    assert std > 20, f"screenshot looks blank (luminance std {std:.1f})"
    # the diagrams area (below the header) holds icons: many distinct colours, not a flat background
    band = pixels[200 * width : 900 * width : 5]
    assert len(set(band)) > 200, len(set(band))

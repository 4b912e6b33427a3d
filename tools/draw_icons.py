"""Draw archgen's icons as 128x128 RGBA PNGs with nothing but the standard library.

A tiny rasterizer: each icon is a list of filled shapes painted in order, 2x2 supersampled for smooth
edges. Deterministic: the same bytes on every run (``tests/test_diagrams.py`` checks the shipped files).
Run ``python -m tools.draw_icons`` to rewrite ``generator/icons/*.png``.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

from generator.icons import HERE, NAMES

SIZE = 128
SAMPLES = 2  # per axis

Color = tuple[int, int, int]
Inside = Callable[[float, float], bool]


@dataclass(frozen=True)
class Shape:
    inside: Inside
    color: Color
    box: tuple[float, float, float, float]  # x0, y0, x1, y1: pixels outside are skipped


def rounded_rect(x0: float, y0: float, x1: float, y1: float, r: float, color: Color) -> Shape:
    def inside(x: float, y: float) -> bool:
        cx = min(max(x, x0 + r), x1 - r)
        cy = min(max(y, y0 + r), y1 - r)
        return (x - cx) ** 2 + (y - cy) ** 2 <= r * r

    return Shape(inside, color, (x0, y0, x1, y1))


def rect(x0: float, y0: float, x1: float, y1: float, color: Color) -> Shape:
    return Shape(lambda x, y: x0 <= x <= x1 and y0 <= y <= y1, color, (x0, y0, x1, y1))


def ellipse(cx: float, cy: float, rx: float, ry: float, color: Color) -> Shape:
    return Shape(
        lambda x, y: ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1.0, color, (cx - rx, cy - ry, cx + rx, cy + ry)
    )


def ring(cx: float, cy: float, r_in: float, r_out: float, color: Color) -> Shape:
    def inside(x: float, y: float) -> bool:
        d = math.hypot(x - cx, y - cy)
        return r_in <= d <= r_out

    return Shape(inside, color, (cx - r_out, cy - r_out, cx + r_out, cy + r_out))


def line(x0: float, y0: float, x1: float, y1: float, width: float, color: Color) -> Shape:
    dx, dy = x1 - x0, y1 - y0
    length2 = dx * dx + dy * dy
    half = width / 2

    def inside(x: float, y: float) -> bool:
        t = max(0.0, min(1.0, ((x - x0) * dx + (y - y0) * dy) / length2))
        return math.hypot(x - (x0 + t * dx), y - (y0 + t * dy)) <= half

    return Shape(inside, color, (min(x0, x1) - half, min(y0, y1) - half, max(x0, x1) + half, max(y0, y1) + half))


def polygon(points: list[tuple[float, float]], color: Color) -> Shape:
    def inside(x: float, y: float) -> bool:
        hit = False
        j = len(points) - 1
        for i, (xi, yi) in enumerate(points):
            xj, yj = points[j]
            if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
                hit = not hit
            j = i
        return hit

    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return Shape(inside, color, (min(xs), min(ys), max(xs), max(ys)))


WHITE = (255, 255, 255)


def feast() -> list[Shape]:
    red = (227, 66, 52)
    return [
        rounded_rect(6, 6, 122, 122, 22, red),
        rect(34, 28, 50, 100, WHITE),  # F
        rect(34, 28, 92, 44, WHITE),
        rect(34, 56, 80, 71, WHITE),
        rounded_rect(84, 80, 96, 100, 3, (255, 214, 204)),  # feature bars
        rounded_rect(66, 88, 78, 100, 3, (255, 214, 204)),
    ]


def triton() -> list[Shape]:
    green = (118, 185, 0)
    shapes = [
        rounded_rect(6, 6, 122, 122, 22, green),
        rect(60, 40, 68, 108, WHITE),  # shaft
        rounded_rect(30, 56, 98, 64, 4, WHITE),  # crossbar
        rect(30, 36, 38, 60, WHITE),  # outer prongs
        rect(90, 36, 98, 60, WHITE),
    ]
    for cx, top in ((34, 18), (64, 14), (94, 18)):  # prong tips
        shapes.append(polygon([(cx - 10, top + 22), (cx, top), (cx + 10, top + 22)], WHITE))
    return shapes


def sqlite() -> list[Shape]:
    blue, light = (0, 106, 160), (120, 190, 230)
    return [
        rect(24, 30, 104, 98, blue),
        ellipse(64, 98, 40, 14, blue),
        ellipse(64, 30, 40, 14, light),
        rect(24, 52, 104, 55, light),
        rect(24, 74, 104, 77, light),
        line(90, 62, 104, 20, 6, WHITE),  # feather stroke
    ]


def cron() -> list[Shape]:
    grey, face, hand = (70, 80, 90), (245, 247, 250), (200, 60, 50)
    return [
        ellipse(64, 64, 56, 56, grey),
        ellipse(64, 64, 46, 46, face),
        *[
            line(
                64 + 38 * math.sin(a),
                64 - 38 * math.cos(a),
                64 + 44 * math.sin(a),
                64 - 44 * math.cos(a),
                4,
                grey,
            )
            for a in (k * math.pi / 6 for k in range(12))
        ],
        line(64, 64, 64, 30, 7, grey),
        line(64, 64, 88, 76, 7, grey),
        line(64, 64, 44, 96, 3, hand),
        ellipse(64, 64, 6, 6, hand),
    ]


def model() -> list[Shape]:
    purple, node, edge = (94, 53, 177), WHITE, (190, 170, 235)
    layers = [[40, 64, 88], [52, 76], [64]]
    xs = [30, 64, 98]
    shapes = [rounded_rect(6, 6, 122, 122, 22, purple)]
    for a, b, xa, xb in zip(layers, layers[1:], xs, xs[1:], strict=False):
        shapes += [line(xa, ya, xb, yb, 3, edge) for ya in a for yb in b]
    for layer, x in zip(layers, xs, strict=True):
        shapes += [ellipse(x, y, 9, 9, node) for y in layer]
    return shapes


def workflow() -> list[Shape]:
    teal, box = (0, 121, 107), WHITE
    return [
        rounded_rect(6, 6, 122, 122, 22, teal),
        line(36, 40, 92, 40, 5, (150, 220, 210)),
        line(36, 40, 64, 90, 5, (150, 220, 210)),
        line(92, 40, 64, 90, 5, (150, 220, 210)),
        rounded_rect(20, 26, 50, 54, 6, box),
        rounded_rect(78, 26, 108, 54, 6, box),
        rounded_rect(49, 76, 79, 104, 6, box),
    ]


ICONS: dict[str, Callable[[], list[Shape]]] = {
    "cron": cron,
    "feast": feast,
    "model": model,
    "sqlite": sqlite,
    "triton": triton,
    "workflow": workflow,
}


def rasterize(shapes: list[Shape]) -> bytes:
    """RGBA rows, each prefixed with PNG filter byte 0."""
    step = 1.0 / SAMPLES
    offsets = [(i + 0.5) * step for i in range(SAMPLES)]
    rows = bytearray()
    for py in range(SIZE):
        rows.append(0)
        for px in range(SIZE):
            r = g = b = a = 0
            for oy in offsets:
                for ox in offsets:
                    x, y = px + ox, py + oy
                    color = None
                    for s in shapes:
                        x0, y0, x1, y1 = s.box
                        if x0 <= x <= x1 and y0 <= y <= y1 and s.inside(x, y):
                            color = s.color
                    if color is not None:
                        r, g, b, a = r + color[0], g + color[1], b + color[2], a + 1
            n = SAMPLES * SAMPLES
            rows += bytes((r // a, g // a, b // a, 255 * a // n) if a else (0, 0, 0, 0))
    return bytes(rows)


def png(raw_rows: bytes, size: int = SIZE) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw_rows, 9)) + chunk(b"IEND", b"")
    )


def draw(name: str) -> bytes:
    return png(rasterize(ICONS[name]()))


def main() -> None:
    assert tuple(sorted(ICONS)) == NAMES
    for name in NAMES:
        (HERE / f"{name}.png").write_bytes(draw(name))
        print(f"wrote generator/icons/{name}.png")


if __name__ == "__main__":
    main()

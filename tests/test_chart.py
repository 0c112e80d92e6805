"""The weekly chart is a well-formed PNG, and its absence without matplotlib is a clear error."""

from __future__ import annotations

import struct
import sys
import zlib
from datetime import date, timedelta

import pytest

from bot.chart import ChartUnavailable, chart_available, weekly_chart_png

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MONDAY = date(2024, 3, 4)
WEEK = [MONDAY + timedelta(days=i) for i in range(7)]


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """Walk a PNG's chunks, checking each CRC (over type + data) as it goes; returns (type, data) pairs."""
    assert data[:8] == PNG_SIGNATURE, "not a PNG signature"
    chunks = []
    offset = 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        body = data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert len(body) == length, f"chunk {kind!r} truncated"
        assert zlib.crc32(kind + body) == crc, f"bad CRC in chunk {kind!r}"
        chunks.append((kind, body))
        offset += 12 + length
        if kind == b"IEND":
            break
    assert offset == len(data), "bytes after IEND"
    return chunks


def assert_valid_png(data: bytes) -> tuple[int, int]:
    chunks = png_chunks(data)
    kinds = [kind for kind, _ in chunks]
    assert kinds[0] == b"IHDR"
    assert kinds[-1] == b"IEND"
    assert b"IDAT" in kinds
    width, height = struct.unpack(">II", chunks[0][1][:8])
    assert width > 0 and height > 0
    # the image data inflates to one filter byte plus RGBA pixels per row (matplotlib writes 8-bit RGBA)
    bit_depth, colour_type = chunks[0][1][8], chunks[0][1][9]
    assert (bit_depth, colour_type) == (8, 6)
    pixels = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    assert len(pixels) == height * (1 + 4 * width)
    return width, height


def test_the_walker_catches_a_corrupted_chunk() -> None:
    data = bytearray(weekly_chart_png([(WEEK[0], 1)], [(WEEK[0], 1.0)], title="t"))
    data[20] ^= 0xFF  # inside IHDR's width
    with pytest.raises(AssertionError, match="bad CRC"):
        png_chunks(bytes(data))


def test_weekly_chart_is_a_valid_small_png() -> None:
    per_day = list(zip(WEEK, [3, 0, 5, 1, 2, 0, 0], strict=True))
    leads = list(zip(WEEK, [2.5, None, 6.0, 30.0, 0.5, None, None], strict=True))
    data = weekly_chart_png(per_day, leads, title="Production releases, week of 2024-03-04")
    width, height = assert_valid_png(data)
    assert (width, height) == (800, 360)  # 8 x 3.6 inches at 100 dpi
    assert len(data) <= 80_000


def test_chart_with_all_zero_data_and_no_lead_times() -> None:
    data = weekly_chart_png([(day, 0) for day in WEEK], [(day, None) for day in WEEK], title="Quiet week")
    assert_valid_png(data)


def test_chart_with_no_days_at_all() -> None:
    assert_valid_png(weekly_chart_png([], [], title="Nothing"))


def test_same_data_gives_the_same_image() -> None:
    per_day = list(zip(WEEK, range(7), strict=True))
    leads = [(day, float(i)) for i, day in enumerate(WEEK)]
    first = weekly_chart_png(per_day, leads, title="twice")
    assert weekly_chart_png(per_day, leads, title="twice") == first
    # and different data a different one, so the comparison above means something
    assert weekly_chart_png(per_day[::-1], leads, title="twice") != first


def test_without_matplotlib_the_chart_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert chart_available()
    # None in sys.modules makes any import of the name fail, as if it were not installed.
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert not chart_available()
    with pytest.raises(ChartUnavailable, match="matplotlib"):
        weekly_chart_png([(WEEK[0], 1)], [(WEEK[0], 1.0)], title="t")


def test_a_broken_matplotlib_install_is_unavailable_too(monkeypatch: pytest.MonkeyPatch) -> None:
    # The package is there but a part the chart needs cannot be imported.
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ChartUnavailable, match="matplotlib") as raised:
        weekly_chart_png([(WEEK[0], 1)], [(WEEK[0], 1.0)], title="t")
    assert isinstance(raised.value.__cause__, ImportError)

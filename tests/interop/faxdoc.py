"""Fax test documents for the interop tests: bilevel test pages, multi-page TIFF
writing (uncompressed, or T.6/G4 through ``tiffcp``), TIFF reading through the
system libtiff (ctypes), PDF rendering through ``pdftoppm`` (poppler-utils) and
pixel comparison.

Bitmaps are numpy ``uint8`` arrays of shape (rows, 1728) holding 1 for black and
0 for white, whatever the file's photometric interpretation.

Resolutions are the T.4 "R8" ones: 204 dpi across, 98 lpi (standard) or 196 lpi
(fine) down. A4 is 297 mm long, i.e. 1146 rows standard / 2292 rows fine.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import re
import struct
import subprocess
import tempfile
from pathlib import Path

import numpy as np

WIDTH = 1728  # T.4 215 mm at 8 dots/mm (fax.md §0.3: must be exactly this)
X_DPI = 204
Y_DPI_STANDARD = 98
Y_DPI_FINE = 196
A4_ROWS_STANDARD = 1146
A4_ROWS_FINE = 2292

# ----------------------------------------------------------------- 5x7 font

_FONT_SRC = {
    "0": ["01110", "10001", "10011", "10101", "11001", "10001", "01110"],
    "1": ["00100", "01100", "00100", "00100", "00100", "00100", "01110"],
    "2": ["01110", "10001", "00001", "00010", "00100", "01000", "11111"],
    "3": ["11110", "00001", "00001", "01110", "00001", "00001", "11110"],
    "4": ["00010", "00110", "01010", "10010", "11111", "00010", "00010"],
    "5": ["11111", "10000", "11110", "00001", "00001", "10001", "01110"],
    "6": ["00110", "01000", "10000", "11110", "10001", "10001", "01110"],
    "7": ["11111", "00001", "00010", "00100", "01000", "01000", "01000"],
    "8": ["01110", "10001", "10001", "01110", "10001", "10001", "01110"],
    "9": ["01110", "10001", "10001", "01111", "00001", "00010", "01100"],
    "A": ["01110", "10001", "10001", "11111", "10001", "10001", "10001"],
    "C": ["01110", "10001", "10000", "10000", "10000", "10001", "01110"],
    "D": ["11110", "10001", "10001", "10001", "10001", "10001", "11110"],
    "E": ["11111", "10000", "10000", "11110", "10000", "10000", "11111"],
    "F": ["11111", "10000", "10000", "11110", "10000", "10000", "10000"],
    "G": ["01110", "10001", "10000", "10111", "10001", "10001", "01111"],
    "O": ["01110", "10001", "10001", "10001", "10001", "10001", "01110"],
    "P": ["11110", "10001", "10001", "11110", "10000", "10000", "10000"],
    "S": ["01111", "10000", "10000", "01110", "00001", "00001", "11110"],
    "T": ["11111", "00100", "00100", "00100", "00100", "00100", "00100"],
    "X": ["10001", "10001", "01010", "00100", "01010", "10001", "10001"],
    " ": ["00000"] * 7,
    "-": ["00000", "00000", "00000", "11111", "00000", "00000", "00000"],
}
FONT = {k: np.array([[int(c) for c in row] for row in v], dtype=np.uint8) for k, v in _FONT_SRC.items()}


def draw_text(img: np.ndarray, text: str, row: int, col: int, sx: int, sy: int) -> None:
    """Draws ``text`` with the 5x7 font, each font pixel ``sx`` wide and ``sy`` tall
    (clipped at the page edges)."""
    for ch in text.upper():
        glyph = np.kron(FONT.get(ch, FONT[" "]), np.ones((sy, sx), dtype=np.uint8))
        r1 = min(img.shape[0], row + glyph.shape[0])
        c1 = min(img.shape[1], col + glyph.shape[1])
        if r1 > row and c1 > col and row >= 0 and col >= 0:
            img[row:r1, col:c1] |= glyph[: r1 - row, : c1 - col]
        col += 6 * sx


# ------------------------------------------------------------------- pages


def _rows(fine: bool, rows: int | None) -> int:
    return rows if rows is not None else (A4_ROWS_FINE if fine else A4_ROWS_STANDARD)


def chart_page(fine: bool = False, rows: int | None = None, seed: int = 1, text_fraction: float = 0.6) -> np.ndarray:
    """A dense test chart: border, ruler ticks, a title, paragraphs of random
    "words" in the 5x7 font down to ``text_fraction`` of the page, then a
    checkerboard patch, diagonal lines and solid bars. The full chart (0.6) is
    about 50 KB of T.6 data, ~30 s at 14400 bit/s; 0.15 takes ~8 s."""
    n = _rows(fine, rows)
    sy = 2 if fine else 1  # keep the aspect roughly square at 204x196 vs 204x98
    rng = np.random.default_rng(seed)
    img = np.zeros((n, WIDTH), dtype=np.uint8)
    img[:4 * sy, :] = 1
    img[-4 * sy:, :] = 1
    img[:, :4] = 1
    img[:, -4:] = 1
    for c in range(0, WIDTH, 32):  # ruler
        img[4 * sy : (12 if c % 128 else 24) * sy, c : c + 2] = 1
    draw_text(img, "CODA FAX TEST CHART", 30 * sy, 80, 6, 6 * sy)
    chars = "0123456789ACDEFGOPSTX"
    top = 90 * sy
    line_h = 10 * sy  # 7 px glyph + 3 px leading, per font pixel row sy
    body_end = max(top, int(n * text_fraction))
    r = top
    while r + line_h < body_end:
        c = 40
        while c < WIDTH - 120:
            wlen = int(rng.integers(2, 9))
            word = "".join(chars[int(i)] for i in rng.integers(0, len(chars), wlen))
            draw_text(img, word, r, c, 2, sy)
            c += (wlen + 1) * 12
        r += line_h + int(rng.integers(0, 3)) * sy
    # checkerboard patch (worst case for run-length codes)
    cb0 = body_end + 10 * sy
    cb1 = min(n - 20 * sy, cb0 + 60 * sy)
    yy, xx = np.mgrid[cb0:cb1, 40:440]
    img[cb0:cb1, 40:440] = (((yy // sy) // 4 + xx // 4) % 2).astype(np.uint8)
    # diagonal lines
    for k in range(8):
        for i in range(0, min(400, cb1 - cb0)):
            c = 500 + 40 * k + i
            if c < WIDTH - 10:
                img[cb0 + i, c : c + 2] = 1
    # solid bars of increasing width
    c = 1000
    for w in (1, 2, 3, 5, 8, 13, 21, 34):
        img[cb0:cb1, c : c + w] = 1
        c += w + 12
    return img


def blank_page(fine: bool = False, rows: int | None = None) -> np.ndarray:
    """A nearly blank page: one short mark near the top left and one dot near the bottom right."""
    n = _rows(fine, rows)
    img = np.zeros((n, WIDTH), dtype=np.uint8)
    img[20:24, 100:300] = 1
    img[n - 30 : n - 27, WIDTH - 120 : WIDTH - 117] = 1
    return img


def numbered_page(number: int, fine: bool = False, rows: int | None = None) -> np.ndarray:
    """A page with "PAGE <number>" in large type, a frame and the number repeated small."""
    n = _rows(fine, rows)
    sy = 2 if fine else 1
    img = np.zeros((n, WIDTH), dtype=np.uint8)
    img[60 * sy : 64 * sy, 60 : WIDTH - 60] = 1
    img[n - 64 * sy : n - 60 * sy, 60 : WIDTH - 60] = 1
    draw_text(img, f"PAGE {number}", n // 3, 200, 40, 20 * sy)
    for i in range(10):
        draw_text(img, f"{number}-{i}", 80 * sy + i * 12 * sy, 80, 2, sy)
    return img


def make_pages(kinds: list[str], fine: bool = False, rows: int | None = None) -> list[np.ndarray]:
    """Pages by kind: "chart", "memo" (a chart with a short text block, quicker to
    send), "blank" or "numbered" (numbered with its 1-based position)."""
    out = []
    for i, k in enumerate(kinds, 1):
        if k == "chart":
            out.append(chart_page(fine, rows, seed=i))
        elif k == "memo":
            out.append(chart_page(fine, rows, seed=i, text_fraction=0.15))
        elif k == "blank":
            out.append(blank_page(fine, rows))
        elif k == "numbered":
            out.append(numbered_page(i, fine, rows))
        else:
            raise ValueError(f"unknown page kind {k!r}")
    return out


# ------------------------------------------------------------- TIFF writer


def _ifd_entry(tag: int, typ: int, count: int, value: bytes) -> bytes:
    return struct.pack("<HHI", tag, typ, count) + value.ljust(4, b"\0")


def write_tiff(path: str | Path, pages: list[np.ndarray], fine: bool = False, compression: str = "none") -> Path:
    """Writes ``pages`` as a multi-page bilevel TIFF (MinIsWhite, MSB-first, one strip
    per page, 204 x 98/196 dpi, PageNumber tags). ``compression`` "none" writes it
    directly; "g4" (T.6) or "g3" (T.4 2-D) re-encodes it with ``tiffcp``."""
    path = Path(path)
    if compression != "none":
        with tempfile.TemporaryDirectory() as d:
            raw = Path(d) / "raw.tif"
            write_tiff(raw, pages, fine, "none")
            opt = {"g4": "g4", "g3": "g3:2d", "g3-1d": "g3:1d"}[compression]
            subprocess.run(["tiffcp", "-c", opt, str(raw), str(path)], check=True, capture_output=True, timeout=60)
        return path
    y_dpi = Y_DPI_FINE if fine else Y_DPI_STANDARD
    out = bytearray(b"II*\0" + struct.pack("<I", 0))
    prev_next_ptr = 4
    total = len(pages)
    for pno, page in enumerate(pages):
        page = np.asarray(page, dtype=np.uint8)
        rows, width = page.shape
        data = np.packbits(page != 0, axis=1).tobytes()
        data_off = len(out)
        out += data
        if len(out) % 2:
            out += b"\0"
        res_off = len(out)
        out += struct.pack("<IIII", X_DPI, 1, y_dpi, 1)
        entries = [
            _ifd_entry(254, 4, 1, struct.pack("<I", 2)),  # NewSubfileType: page
            _ifd_entry(256, 4, 1, struct.pack("<I", width)),
            _ifd_entry(257, 4, 1, struct.pack("<I", rows)),
            _ifd_entry(258, 3, 1, struct.pack("<H", 1)),  # BitsPerSample
            _ifd_entry(259, 3, 1, struct.pack("<H", 1)),  # Compression: none
            _ifd_entry(262, 3, 1, struct.pack("<H", 0)),  # Photometric: MinIsWhite
            _ifd_entry(266, 3, 1, struct.pack("<H", 1)),  # FillOrder: MSB first
            _ifd_entry(273, 4, 1, struct.pack("<I", data_off)),
            _ifd_entry(274, 3, 1, struct.pack("<H", 1)),  # Orientation
            _ifd_entry(277, 3, 1, struct.pack("<H", 1)),  # SamplesPerPixel
            _ifd_entry(278, 4, 1, struct.pack("<I", rows)),  # RowsPerStrip
            _ifd_entry(279, 4, 1, struct.pack("<I", len(data))),
            _ifd_entry(282, 5, 1, struct.pack("<I", res_off)),
            _ifd_entry(283, 5, 1, struct.pack("<I", res_off + 8)),
            _ifd_entry(284, 3, 1, struct.pack("<H", 1)),  # PlanarConfig
            _ifd_entry(296, 3, 1, struct.pack("<H", 2)),  # ResolutionUnit: inch
            _ifd_entry(297, 3, 2, struct.pack("<HH", pno, total)),  # PageNumber
        ]
        ifd_off = len(out)
        struct.pack_into("<I", out, prev_next_ptr, ifd_off)
        out += struct.pack("<H", len(entries)) + b"".join(entries)
        prev_next_ptr = len(out)
        out += struct.pack("<I", 0)
    path.write_bytes(bytes(out))
    return path


# ------------------------------------------------------ TIFF reader (libtiff)


@dataclasses.dataclass
class TiffPage:
    bitmap: np.ndarray  # uint8, 1 = black
    x_dpi: float
    y_dpi: float
    compression: int
    fill_order: int
    photometric: int


_libtiff = None


def _tiff() -> ctypes.CDLL:
    global _libtiff
    if _libtiff is None:
        name = ctypes.util.find_library("tiff") or "libtiff.so.6"
        lib = ctypes.CDLL(name)
        lib.TIFFOpen.restype = ctypes.c_void_p
        lib.TIFFOpen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        lib.TIFFClose.argtypes = [ctypes.c_void_p]
        lib.TIFFReadDirectory.argtypes = [ctypes.c_void_p]
        lib.TIFFScanlineSize.restype = ctypes.c_ssize_t
        lib.TIFFScanlineSize.argtypes = [ctypes.c_void_p]
        lib.TIFFReadScanline.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_uint16]
        lib.TIFFSetWarningHandler.restype = ctypes.c_void_p
        lib.TIFFSetWarningHandler.argtypes = [ctypes.c_void_p]
        lib.TIFFSetWarningHandler(None)  # spandsp's files draw harmless warnings
        _libtiff = lib
    return _libtiff


def _get(lib, tif, tag: int, ctype, default):
    v = ctype()
    if lib.TIFFGetField(ctypes.c_void_p(tif), ctypes.c_uint32(tag), ctypes.byref(v)):
        return v.value
    return default


def read_tiff(path: str | Path) -> list[TiffPage]:
    """Decodes every page of a bilevel TIFF (any libtiff codec, either fill order)."""
    lib = _tiff()
    tif = lib.TIFFOpen(str(path).encode(), b"r")
    if not tif:
        raise ValueError(f"libtiff cannot open {path}")
    pages = []
    try:
        while True:
            width = _get(lib, tif, 256, ctypes.c_uint32, 0)
            rows = _get(lib, tif, 257, ctypes.c_uint32, 0)
            bps = _get(lib, tif, 258, ctypes.c_uint16, 1)
            if bps != 1:
                raise ValueError(f"{path}: BitsPerSample {bps}, not bilevel")
            photometric = _get(lib, tif, 262, ctypes.c_uint16, 0)
            compression = _get(lib, tif, 259, ctypes.c_uint16, 1)
            fill = _get(lib, tif, 266, ctypes.c_uint16, 1)
            xres = _get(lib, tif, 282, ctypes.c_float, 0.0)
            yres = _get(lib, tif, 283, ctypes.c_float, 0.0)
            unit = _get(lib, tif, 296, ctypes.c_uint16, 2)
            if unit == 3:  # centimetre
                xres, yres = xres * 2.54, yres * 2.54
            n = lib.TIFFScanlineSize(ctypes.c_void_p(tif))
            buf = ctypes.create_string_buffer(n)
            out = np.zeros((rows, n), dtype=np.uint8)
            for r in range(rows):
                if lib.TIFFReadScanline(ctypes.c_void_p(tif), buf, r, 0) < 0:
                    raise ValueError(f"{path}: libtiff failed on row {r} of page {len(pages) + 1}")
                out[r] = np.frombuffer(buf.raw, dtype=np.uint8)
            bits = np.unpackbits(out, axis=1)[:, :width]
            if photometric == 1:  # MinIsBlack: 0 is black
                bits = 1 - bits
            pages.append(TiffPage(bits.astype(np.uint8), round(xres, 2), round(yres, 2), compression, fill, photometric))
            if not lib.TIFFReadDirectory(ctypes.c_void_p(tif)):
                break
    finally:
        lib.TIFFClose(ctypes.c_void_p(tif))
    return pages


# ------------------------------------------------------------ PDF rendering


def _read_pnm(data: bytes) -> np.ndarray:
    """P4 (PBM) or P5 (PGM, 8 bit) → uint8 1 = black."""
    fields: list[bytes] = []
    pos = 0
    want = 3 if data[:2] == b"P4" else 4
    while len(fields) < want:
        while data[pos : pos + 1].isspace():
            pos += 1
        if data[pos : pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        start = pos
        while not data[pos : pos + 1].isspace():
            pos += 1
        fields.append(data[start:pos])
    pos += 1
    w, h = int(fields[1]), int(fields[2])
    if fields[0] == b"P4":
        stride = (w + 7) // 8
        raw = np.frombuffer(data[pos : pos + stride * h], dtype=np.uint8).reshape(h, stride)
        return np.unpackbits(raw, axis=1)[:, :w].astype(np.uint8)
    if fields[0] == b"P5":
        raw = np.frombuffer(data[pos : pos + w * h], dtype=np.uint8).reshape(h, w)
        return (raw < 128).astype(np.uint8)
    raise ValueError(f"unsupported PNM {fields[0]!r}")


def render_pdf(pdf_path: str | Path, dpi_x: float = X_DPI, dpi_y: float = Y_DPI_STANDARD) -> list[np.ndarray]:
    """Renders every page of a PDF with ``pdftoppm -rx/-ry`` (grey, no anti-aliasing)
    and thresholds at 50 % → list of uint8 bitmaps, 1 = black.

    pdftoppm sizes the bitmap as ceil(points × dpi / 72); a page meant to be exactly
    N pixels whose size was written rounded up in the PDF (841.9592 pt for 1146 rows
    at 98 lpi) then gets N+1 rows and the image is resampled, blurring every row.
    Rendering at a resolution smaller by a relative 1e-5 absorbs such rounding
    (≤ 0.03 px on an A4 page) and gives a pixel-exact copy of an embedded fax image
    whose page size is width/dpi × height/dpi (checked with tiff2pdf output)."""
    eps = 1.0 - 1e-5
    with tempfile.TemporaryDirectory() as d:
        subprocess.run(
            ["pdftoppm", "-gray", "-aa", "no", "-aaVector", "no", "-rx", f"{dpi_x * eps:.6f}",
             "-ry", f"{dpi_y * eps:.6f}", str(pdf_path), str(Path(d) / "p")],
            check=True, capture_output=True, timeout=120,
        )
        files = sorted(Path(d).glob("p-*.pgm"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
        return [_read_pnm(f.read_bytes()) for f in files]


def pdf_page_sizes(pdf_path: str | Path) -> list[tuple[float, float]]:
    """(width, height) of every page in points, from ``pdfinfo``."""
    r = subprocess.run(["pdfinfo", "-f", "1", "-l", "100000", str(pdf_path)], check=True, capture_output=True,
                       text=True, timeout=60)
    out = []
    for line in r.stdout.splitlines():
        m = re.match(r"Page\s+\d+\s+size:\s+([\d.]+)\s+x\s+([\d.]+)\s+pts", line)
        if m:
            out.append((float(m.group(1)), float(m.group(2))))
    return out


def tiff_to_pdf(tiff_path: str | Path, pdf_path: str | Path) -> Path:
    """``tiff2pdf`` (libtiff-tools): CCITT data is embedded as is, page size from the resolution."""
    subprocess.run(["tiff2pdf", "-o", str(pdf_path), str(tiff_path)], check=True, capture_output=True, timeout=60)
    return Path(pdf_path)


# -------------------------------------------------------------- comparison


def compare(src: np.ndarray, rendered: np.ndarray) -> int:
    """Number of differing pixels, both images padded with white to the larger shape
    (so missing rows or columns count as far as they hold black)."""
    a = np.asarray(src, dtype=np.uint8) != 0
    b = np.asarray(rendered, dtype=np.uint8) != 0
    h = max(a.shape[0], b.shape[0])
    w = max(a.shape[1], b.shape[1])
    pa = np.zeros((h, w), dtype=bool)
    pb = np.zeros((h, w), dtype=bool)
    pa[: a.shape[0], : a.shape[1]] = a
    pb[: b.shape[0], : b.shape[1]] = b
    return int(np.count_nonzero(pa != pb))


def compare_pages(src: list[np.ndarray], got: list[np.ndarray]) -> list[int]:
    """Per-page mismatch counts; a missing or extra page counts all its black pixels."""
    out = []
    for i in range(max(len(src), len(got))):
        if i < len(src) and i < len(got):
            out.append(compare(src[i], got[i]))
        else:
            page = src[i] if i < len(src) else got[i]
            out.append(int(np.count_nonzero(page)))
    return out

"""What a picture says it is, read from its header before anything is decoded.

A few hundred bytes can declare a picture of 65500 x 65500 pixels, and a decoder allocates
what the header declares: so the format must be one of a short list (``FORMATS``), its
size must be readable from its header, and decoding it must fit ``MAX_DECODE_BYTES``
(``decode_bytes``), or the picture is refused in one line before OpenCV sees a byte.
The bytes per pixel are OpenCV 4.x's own, measured with each format at 6000 x 6000
(peak RSS of ``cv2.imdecode``): about 6 in colour, 2 in gray (4 for WebP, which decodes
in colour first), and a progressive JPEG keeps every DCT coefficient of the whole picture
(2 bytes a sample) whatever size it is decoded to.
"""
from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import EmotionEdgeError

FORMATS = "JPEG, PNG, WebP, BMP or TIFF"
MAX_DECODE_BYTES = 128 * 1024 * 1024
MAX_JPEG_SEGMENTS = 10_000

Reader = Callable[[int, int], bytes]     # (offset, count) -> at most count bytes there


class HeaderError(EmotionEdgeError, ValueError):
    """Not a picture this project decodes, or one too large; the message is one line."""


@dataclass(frozen=True)
class ImageHeader:
    format: str
    width: int
    height: int
    progressive: bool = False      # JPEG: every coefficient is kept while decoding
    sample_factor: float = 1.0     # JPEG: samples per pixel over all components (4:2:0 = 1.5)
    bits: int = 8                  # TIFF: bits per sample

    @property
    def pixels(self) -> int:
        return self.width * self.height


def read_header(read: Reader) -> ImageHeader:
    head = read(0, 32)
    if head[:3] == b"\xff\xd8\xff":
        return _jpeg(read)
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        if head[12:16] != b"IHDR" or len(head) < 24:
            raise HeaderError("a PNG without its IHDR header")
        w, h = struct.unpack(">II", head[16:24])
        return _sized("PNG", w, h)
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _webp(read(0, 30))
    if head[:2] == b"BM":
        return _bmp(read(0, 30))
    if head[:4] in (b"II*\0", b"MM\0*"):
        return _tiff(read, "<" if head[:2] == b"II" else ">")
    raise HeaderError(f"not a picture in a format this reads ({FORMATS})")


def decode_bytes(h: ImageHeader, gray: bool, reduce: int = 1) -> int:
    """Peak bytes OpenCV takes to decode ``h`` in gray or colour, at 1/``reduce`` scale
    (JPEG only)."""
    out = h.pixels / (reduce * reduce) * (2 if gray else 6)
    if h.format == "WebP" and gray:
        out = h.pixels * 4
    if h.format == "TIFF" and h.bits > 8:
        out *= h.bits / 8
    if h.progressive:
        out += h.pixels * h.sample_factor * 2
    return int(out)


def _sized(fmt: str, w: int, h: int, **kw) -> ImageHeader:
    if w <= 0 or h <= 0:
        raise HeaderError(f"a {fmt} header that declares {w} x {h} pixels")
    return ImageHeader(fmt, w, h, **kw)


def _jpeg(read: Reader) -> ImageHeader:
    i = 2
    for _ in range(MAX_JPEG_SEGMENTS):
        seg = read(i, 4)
        if len(seg) < 2 or seg[0] != 0xFF:
            break
        marker = seg[1]
        if marker == 0xFF:                                   # fill byte
            i += 1
            continue
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # no length
            i += 2
            continue
        if marker in (0xD9, 0xDA) or len(seg) < 4:           # end, or scan data: no frame
            break
        length = struct.unpack(">H", seg[2:4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):   # start of frame
            sof = read(i + 4, min(length - 2, 6 + 3 * 4))
            if len(sof) < 6:
                break
            h, w, n = struct.unpack(">HHB", sof[1:6])
            comps = [sof[6 + 3 * k + 1] for k in range(n) if len(sof) >= 6 + 3 * k + 3]
            if not comps:
                raise HeaderError("a JPEG frame with no components")
            hs, vs = [c >> 4 or 1 for c in comps], [c & 15 or 1 for c in comps]
            factor = sum(a * b for a, b in zip(hs, vs)) / (max(hs) * max(vs))
            return _sized("JPEG", w, h, progressive=marker in (0xC2, 0xC6, 0xCA, 0xCE),
                          sample_factor=factor)
        i += 2 + length
    raise HeaderError("a JPEG whose size cannot be read from its header")


def _webp(head: bytes) -> ImageHeader:
    chunk, data = head[12:16], head[20:]
    if chunk == b"VP8 " and len(data) >= 10 and data[3:6] == b"\x9d\x01\x2a":
        w, h = struct.unpack("<HH", data[6:10])
        return _sized("WebP", w & 0x3FFF, h & 0x3FFF)
    if chunk == b"VP8L" and len(data) >= 5 and data[0] == 0x2F:
        bits = struct.unpack("<I", data[1:5])[0]
        return _sized("WebP", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X" and len(data) >= 10:
        return _sized("WebP", int.from_bytes(data[4:7], "little") + 1,
                      int.from_bytes(data[7:10], "little") + 1)
    raise HeaderError("a WebP whose size cannot be read from its header")


def _bmp(head: bytes) -> ImageHeader:
    if len(head) < 26:
        raise HeaderError("a BMP cut off in its header")
    size = struct.unpack("<I", head[14:18])[0]
    if size == 12:
        w, h = struct.unpack("<HH", head[18:22])
    else:
        w, h = struct.unpack("<ii", head[18:26])
    return _sized("BMP", w, abs(h))


def _tiff(read: Reader, order: str) -> ImageHeader:
    ifd = struct.unpack(order + "I", read(4, 4).ljust(4, b"\0"))[0]
    count_bytes = read(ifd, 2)
    if len(count_bytes) < 2:
        raise HeaderError("a TIFF whose size cannot be read from its header")
    n = min(struct.unpack(order + "H", count_bytes)[0], 1000)
    entries = read(ifd + 2, 12 * n)
    found: dict[int, int] = {}
    for k in range(len(entries) // 12):
        tag, kind, count = struct.unpack(order + "HHI", entries[12 * k:12 * k + 8])
        raw = entries[12 * k + 8:12 * k + 12]
        if tag in (256, 257, 258) and kind in (3, 4):       # SHORT or LONG, first value
            found[tag] = struct.unpack(order + ("H" if kind == 3 else "I"),
                                       raw[:2] if kind == 3 else raw)[0]
            if tag == 258 and kind == 3 and count > 2:       # values elsewhere: the first
                off = struct.unpack(order + "I", raw)[0]
                found[tag] = struct.unpack(order + "H", read(off, 2).ljust(2, b"\0"))[0]
    if 256 not in found or 257 not in found:
        raise HeaderError("a TIFF whose size cannot be read from its header")
    return _sized("TIFF", found[256], found[257], bits=max(8, found.get(258, 8)))

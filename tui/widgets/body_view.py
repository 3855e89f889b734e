"""How a body is shown: text decoded by its charset, JSON pretty-printed,
forms as fields, images described, anything else as a hex dump.

Everything returned is safe for a terminal (control characters escaped).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from urllib.parse import parse_qsl

from devserver.kit.safetext import escape_controls
from tui import format as fmt

TEXT_LIMIT = 64 * 1024  # characters shown of a text body (the export has it all)
HEX_LIMIT = 4 * 1024  # bytes shown as hex


def media_type(content_type: str) -> tuple[str, str | None]:
    """(``type/subtype`` in lower case, charset or None) of a Content-Type value."""
    kind, *params = content_type.split(";")
    charset = None
    for param in params:
        name, _, value = param.strip().partition("=")
        if name.lower() == "charset":
            charset = value.strip().strip('"') or None
    return kind.strip().lower(), charset


def decode_text(data: bytes, charset: str | None, cut: bool) -> str | None:
    """``data`` as text in ``charset`` (UTF-8 by default), or None if it is not text in it.

    A cut body may end in the middle of a character: that tail is left out.
    """
    try:
        text = data.decode(charset or "utf-8")
    except LookupError:
        return None
    except UnicodeDecodeError as exc:
        if not cut or exc.start < len(data) - 4:
            return None
        text = data[: exc.start].decode(charset or "utf-8", "replace")
    printable = sum(1 for ch in text[:4096] if ch.isprintable() or ch in "\r\n\t")
    return text if printable >= 0.95 * min(len(text), 4096) else None


def hex_dump(data: bytes, limit: int = HEX_LIMIT) -> str:
    """Offset, hex and ASCII columns, 16 bytes a line."""
    lines = []
    for offset in range(0, min(len(data), limit), 16):
        chunk = data[offset : offset + 16]
        ascii_ = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{offset:06x}  {chunk.hex(' '):<47}  {ascii_}")
    if len(data) > limit:
        lines.append(f"… {len(data) - limit} more bytes (export the request to see them all)")
    return "\n".join(lines)


def _png(data: bytes) -> tuple[int, int] | None:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    return None


def _gif(data: bytes) -> tuple[int, int] | None:
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    return None


def _jpeg(data: bytes) -> tuple[int, int] | None:
    i = 2
    while data[:2] == b"\xff\xd8" and i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker, length = data[i + 1], struct.unpack(">H", data[i + 2 : i + 4])[0]
        if marker in (0xC0, 0xC1, 0xC2):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + length
    return None


IMAGE_PROBES: dict[str, Callable[[bytes], tuple[int, int] | None]] = {"PNG": _png, "GIF": _gif, "JPEG": _jpeg}


def describe_image(data: bytes, size: int) -> str | None:
    """"PNG image, 640×480, 12.3 KB" when ``data`` starts like a known image."""
    for name, probe in IMAGE_PROBES.items():
        if (dims := probe(data)) is not None:
            return f"{name} image, {dims[0]}×{dims[1]}, {fmt.size(size)}"
    return None


def _limit(text: str) -> str:
    if len(text) <= TEXT_LIMIT:
        return text
    return text[:TEXT_LIMIT] + f"\n… {len(text) - TEXT_LIMIT} more characters (export the request to see them all)"


def render_body(data: bytes, content_type: str, *, size: int | None = None, cut: bool = False) -> str:
    """The body as the detail screen shows it (escaped)."""
    if not data:
        return "—"
    kind, charset = media_type(content_type)
    image = describe_image(data, size if size is not None else len(data)) if kind.startswith("image/") or not kind else None
    if image is not None:
        return image
    text = decode_text(data, charset, cut)
    if text is None:
        return hex_dump(data)
    if ("json" in kind or (not kind and text.lstrip()[:1] in ("{", "["))) and not cut:
        try:
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        except ValueError:
            pass
    elif kind == "application/x-www-form-urlencoded" and not cut:
        pairs = parse_qsl(text, keep_blank_values=True)
        if pairs:
            text = "\n".join(f"{name} = {value}" for name, value in pairs)
    return escape_controls(_limit(text))

"""What an SMS body will cost before it is sent: encoding, length and number of parts.

Rules (``PROTOCOLS.md``, "SMS segments and cost"): a body made only of GSM 03.38 characters
is sent as GSM-7, 160 septets in one part or 153 per part when split (the rest of each part
holds the concatenation header). A single character outside that alphabet turns the whole
body into UCS-2: 70 UTF-16 code units in one part, 67 per part when split. Extension
characters take two septets (an escape plus the character) and an astral-plane character
such as an emoji takes two code units (a surrogate pair); neither may be split across parts,
so parts are counted by packing characters into them, which can need more parts than
``ceil(units / per_part)``.

Personalization changes both length and encoding per recipient: analyze the rendered body.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

GSM7 = "GSM-7"
UCS2 = "UCS-2"

GSM7_SINGLE, GSM7_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67

#: GSM 03.38 default alphabet, in table order 0x00-0x7F; 0x1B (the escape to the extension
#: table) is left out. Note ``$`` (0x02) and ``¤`` (0x24) are both present, and 0x09 is the
#: capital ``Ç``.
GSM7_BASIC: frozenset[str] = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)

#: GSM 03.38 extension table: each costs two septets (escape + character).
GSM7_EXTENSION: frozenset[str] = frozenset("\f^{}\\[~]|€")

GSM7_CHARACTERS: frozenset[str] = GSM7_BASIC | GSM7_EXTENSION

_QUOTE = "'"
_DOUBLE_QUOTE = '"'

#: Explicit GSM-7 stand-ins for common characters that force UCS-2. An empty string means
#: "drop it": the character is invisible and only costs money.
_REPLACEMENTS: dict[str, str] = {
    # Written as escapes: most of these look like their ASCII stand-ins.
    # single quotes, prime, single angle quotes, grave and acute accents
    **dict.fromkeys("\u2018\u2019\u201a\u201b\u2032\u2039\u203a`\u00b4", _QUOTE),
    # double quotes, double prime, guillemets
    **dict.fromkeys("\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb", _DOUBLE_QUOTE),
    # hyphen, non-breaking hyphen, figure/en/em dash, horizontal bar, minus sign, bullet
    **dict.fromkeys("\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2022", "-"),
    "\u2026": "...",  # ellipsis
    "\t": " ",
    "\u2028": "\n",  # line separator
    "\u2029": "\n",  # paragraph separator
    "\u200b": "",  # zero-width space
    "\u2060": "",  # word joiner
    "\ufeff": "",  # byte-order mark / zero-width no-break space
    "\u00ad": "",  # soft hyphen
    "\u0142": "l",  # ł
    "\u0141": "L",  # Ł
    "\u0111": "d",  # đ
    "\u0110": "D",  # Đ
    "\u0131": "i",  # dotless i
    "\u0153": "oe",  # œ
    "\u0152": "OE",  # Œ
}


@dataclass(frozen=True)
class Ucs2Character:
    """A character that forces UCS-2, and its GSM-7 stand-in (None when there is none)."""

    char: str
    suggestion: str | None

    @property
    def code_point(self) -> str:
        """``U+2019`` style, for showing invisible characters to a marketer."""
        return f"U+{ord(self.char):04X}"


@dataclass(frozen=True)
class SegmentInfo:
    """The cost of one SMS body.

    ``units`` are septets for GSM-7 (extension characters count 2) and UTF-16 code units for
    UCS-2. ``per_segment`` is the part size used: the single-part limit when the body fits in
    one part, the split limit otherwise. ``remaining`` is what is left in the last part.
    """

    encoding: str
    units: int
    segments: int
    per_segment: int
    remaining: int
    ucs2_characters: tuple[Ucs2Character, ...]

    @property
    def is_gsm7(self) -> bool:
        return self.encoding == GSM7


def is_gsm7(text: str) -> bool:
    """True when every character of ``text`` is in the GSM-7 basic or extension table."""
    return all(c in GSM7_CHARACTERS for c in text)


def _gsm7_width(char: str) -> int:
    return 2 if char in GSM7_EXTENSION else 1


def _ucs2_width(char: str) -> int:
    return 2 if ord(char) > 0xFFFF else 1


def _pack(widths: list[int], per_part: int) -> tuple[int, int]:
    """Pack characters of the given widths into parts of ``per_part`` units, never splitting
    one; return (number of parts, units used in the last part)."""
    parts, used = 1, 0
    for width in widths:
        if used + width > per_part:
            parts, used = parts + 1, 0
        used += width
    return parts, used


def suggestion_for(char: str) -> str | None:
    """A GSM-7 replacement for a character outside GSM-7, or None when none is sensible
    (a GSM-7 character is returned unchanged).

    Explicit stand-ins first (quotes, dashes, ellipsis, invisible characters), then any
    Unicode space becomes a space, a combining accent (text typed in decomposed form) is
    dropped, and a letter becomes its compatibility decomposition without accents when that
    is all GSM-7 (``á`` -> ``a``, ``ﬁ`` -> ``fi``). Emoji and non-Latin scripts get None.
    """
    if char in GSM7_CHARACTERS:
        return char
    if char in _REPLACEMENTS:
        return _REPLACEMENTS[char]
    category = unicodedata.category(char)
    if category == "Zs":
        return " "
    if "\u0300" <= char <= "\u036f":
        return ""
    if category.startswith("L"):
        decomposed = unicodedata.normalize("NFKD", char)
        plain = "".join(c for c in decomposed if not unicodedata.combining(c))
        if plain and is_gsm7(plain):
            return plain
    return None


def _ucs2_culprits(text: str) -> tuple[Ucs2Character, ...]:
    seen: dict[str, Ucs2Character] = {}
    for char in text:
        if char not in GSM7_CHARACTERS and char not in seen:
            seen[char] = Ucs2Character(char, suggestion_for(char))
    return tuple(seen.values())


def analyze(text: str) -> SegmentInfo:
    """Encoding, length and part count of ``text`` as it will be sent.

    An empty body reports 0 units and 1 segment: a send needs a body, and providers
    (Twilio) bill an empty message as one part.
    """
    culprits = _ucs2_culprits(text)
    if culprits:
        encoding, single, multi = UCS2, UCS2_SINGLE, UCS2_MULTI
        widths = [_ucs2_width(c) for c in text]
    else:
        encoding, single, multi = GSM7, GSM7_SINGLE, GSM7_MULTI
        widths = [_gsm7_width(c) for c in text]
    units = sum(widths)
    per_segment = single if units <= single else multi
    segments, last = _pack(widths, per_segment)
    return SegmentInfo(
        encoding=encoding,
        units=units,
        segments=segments,
        per_segment=per_segment,
        remaining=per_segment - last,
        ucs2_characters=culprits,
    )


def suggest_gsm(text: str) -> str:
    """``text`` with every suggested GSM-7 replacement applied; characters without a
    suggestion (emoji, non-Latin scripts) are left as they are."""
    return "".join(_or_self(suggestion_for(char), char) for char in text)


def _or_self(suggestion: str | None, char: str) -> str:
    return char if suggestion is None else suggestion

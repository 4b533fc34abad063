"""SMS cost before sending: GSM-7/UCS-2 detection, unit counts, part packing that never splits
an extension character or a surrogate pair, and GSM-7 suggestions for UCS-2 culprits."""

# The look-alike characters (curly quotes, dashes, Cyrillic) are what these tests are about.
# ruff: noqa: RUF001

from __future__ import annotations

import math
import random
from dataclasses import FrozenInstanceError

import pytest

from channels.sms_segments import (
    GSM7,
    GSM7_BASIC,
    GSM7_CHARACTERS,
    GSM7_EXTENSION,
    UCS2,
    SegmentInfo,
    Ucs2Character,
    analyze,
    is_gsm7,
    suggest_gsm,
    suggestion_for,
)

EMOJI = "😀"  # U+1F600, astral plane: a surrogate pair in UTF-16
UCS2_FORCER = "ł"  # U+0142, not in GSM-7, one UTF-16 unit


def shape(info: SegmentInfo) -> tuple[str, int, int, int, int]:
    return (info.encoding, info.units, info.segments, info.per_segment, info.remaining)


# --- the alphabet -----------------------------------------------------------------------------


def test_basic_table_has_127_characters_and_extension_table_10() -> None:
    # 128 positions in GSM 03.38, minus 0x1B (escape to the extension table).
    assert len(GSM7_BASIC) == 127
    assert len(GSM7_EXTENSION) == 10
    assert not GSM7_BASIC & GSM7_EXTENSION
    assert "\x1b" not in GSM7_CHARACTERS


@pytest.mark.parametrize(
    "char",
    list("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ ¤¡ÄÖÑÜ§¿äöñüà") + list("!\"#%&'()*+,-./:;<=>?09AZaz"),
)
def test_in_basic_table(char: str) -> None:
    assert char in GSM7_BASIC
    assert shape(analyze(char)) == (GSM7, 1, 1, 160, 159)


@pytest.mark.parametrize("char", list("^{}\\[]~|€\f"))
def test_extension_characters_cost_two_septets(char: str) -> None:
    assert char in GSM7_EXTENSION
    assert shape(analyze(char)) == (GSM7, 2, 1, 160, 158)


@pytest.mark.parametrize(
    "char",
    [
        "…",
        "“",
        "”",
        "‘",
        "’",
        "–",
        "—",
        "\u00a0",  # non-breaking space
        "`",  # the only printable ASCII character outside GSM-7
        "\t",
        "ë",  # as in Zoë
        "á",
        "ç",  # 0x09 is the capital Ç only
        "È",  # only the capital É is in the table
        "Δ".lower(),  # δ: only some Greek capitals are in the table
        "\u2206",  # INCREMENT looks like Δ but is not U+0394
        "✓",
        EMOJI,
    ],
)
def test_not_gsm7(char: str) -> None:
    assert char not in GSM7_CHARACTERS
    assert not is_gsm7("plain text " + char)
    assert analyze(char).encoding == UCS2


# --- GSM-7 counting and packing ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # (encoding, units, segments, per_segment, remaining)
        ("a" * 160, (GSM7, 160, 1, 160, 0)),
        ("a" * 161, (GSM7, 161, 2, 153, 145)),  # 153 + 8
        ("a" * 306, (GSM7, 306, 2, 153, 0)),  # 153 * 2
        ("a" * 307, (GSM7, 307, 3, 153, 152)),  # 153 * 2 + 1
        ("a" * 1530, (GSM7, 1530, 10, 153, 0)),  # 153 * 10
        ("a" * 1531, (GSM7, 1531, 11, 153, 152)),
        ("a" * 1600, (GSM7, 1600, 11, 153, 83)),  # 1600 - 1530 = 70 in part 11, 83 left
        ("€" * 80, (GSM7, 160, 1, 160, 0)),  # 80 * 2 = 160 fits one part
        # 81 * 2 = 162 > 160: split; 76 € (152 septets) per part, 153rd slot unusable:
        # 76 + 5 → 2 parts, the last holding 10 septets.
        ("€" * 81, (GSM7, 162, 2, 153, 143)),
        ("a" * 159 + "€", (GSM7, 161, 2, 153, 145)),  # 153 a | 6 a + € = 8
        ("\r\n" * 80, (GSM7, 160, 1, 160, 0)),  # CR and LF are one septet each
        ("a\r\nb", (GSM7, 4, 1, 160, 156)),
    ],
)
def test_gsm7_counts(text: str, expected: tuple[str, int, int, int, int]) -> None:
    assert shape(analyze(text)) == expected


def test_extension_character_at_part_boundary_moves_to_next_part() -> None:
    # 152 a + € + 152 a = 306 septets; naive ceil(306 / 153) = 2.
    # Packed: part 1 = 152 a (€ needs 2, only 1 left); part 2 = € + 151 a = 153;
    # part 3 = 1 a → 3 parts, 152 left.
    text = "a" * 152 + "€" + "a" * 152
    info = analyze(text)
    assert math.ceil(info.units / 153) == 2
    assert shape(info) == (GSM7, 306, 3, 153, 152)


def test_extension_character_exactly_filling_a_part_is_not_moved() -> None:
    # 151 a + € = 153 exactly; then 8 a → 2 parts, 145 left.
    assert shape(analyze("a" * 151 + "€" + "a" * 8)) == (GSM7, 161, 2, 153, 145)


def test_long_gsm7_text_where_packing_needs_an_extra_part() -> None:
    # a + 837 € = 1 + 1674 = 1675 septets; naive ceil(1675 / 153) = 11.
    # Part 1: a + 76 € = 153. Parts 2-11: 76 € each (152, one slot wasted) = 760 €.
    # 76 + 760 = 836, so part 12 holds the last € (2 septets): 12 parts, 151 left.
    info = analyze("a" + "€" * 837)
    assert math.ceil(info.units / 153) == 11
    assert shape(info) == (GSM7, 1675, 12, 153, 151)


def test_empty_text_is_one_billed_part() -> None:
    info = analyze("")
    assert shape(info) == (GSM7, 0, 1, 160, 160)
    assert info.ucs2_characters == ()
    assert info.is_gsm7


# --- UCS-2 counting and packing ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (UCS2_FORCER * 70, (UCS2, 70, 1, 70, 0)),
        (UCS2_FORCER * 71, (UCS2, 71, 2, 67, 63)),  # 67 + 4
        (UCS2_FORCER * 134, (UCS2, 134, 2, 67, 0)),  # 67 * 2
        (UCS2_FORCER * 135, (UCS2, 135, 3, 67, 66)),  # 67 * 2 + 1
        (UCS2_FORCER + "a" * 69, (UCS2, 70, 1, 70, 0)),  # GSM characters count 1 in UCS-2
        (UCS2_FORCER + "€" * 69, (UCS2, 70, 1, 70, 0)),  # so do extension characters
        (EMOJI, (UCS2, 2, 1, 70, 68)),  # astral: surrogate pair
        ("✓", (UCS2, 1, 1, 70, 69)),  # U+2713, BMP: one unit
        (EMOJI * 35, (UCS2, 70, 1, 70, 0)),
        # 36 emoji = 72 units: 33 per part (66, one unit wasted) → 33 + 3: 2 parts, 6 used.
        (EMOJI * 36, (UCS2, 72, 2, 67, 61)),
        ("a" * 69 + EMOJI, (UCS2, 71, 2, 67, 63)),  # 67 a | 2 a + emoji = 4
    ],
)
def test_ucs2_counts(text: str, expected: tuple[str, int, int, int, int]) -> None:
    assert shape(analyze(text)) == expected


def test_emoji_at_part_boundary_moves_whole_to_next_part() -> None:
    # ł + 65 a = 66 units; the emoji (2 units) would straddle unit 67, so it starts part 2.
    # Part 2: emoji + 65 a = 67; part 3: the last a. Total 66 + 2 + 66 = 134 units,
    # naive ceil(134 / 67) = 2, packed = 3.
    text = UCS2_FORCER + "a" * 65 + EMOJI + "a" * 66
    info = analyze(text)
    assert math.ceil(info.units / 67) == 2
    assert shape(info) == (UCS2, 134, 3, 67, 66)


def test_emoji_exactly_filling_a_part_is_not_moved() -> None:
    # ł + 64 a + emoji = 67 exactly; then 66 a = 66 → 2 parts, 1 left.
    text = UCS2_FORCER + "a" * 64 + EMOJI + "a" * 66
    assert shape(analyze(text)) == (UCS2, 133, 2, 67, 1)


def test_long_emoji_text_where_packing_needs_an_extra_part() -> None:
    # 800 emoji = 1600 units; naive ceil(1600 / 67) = 24. Packed: 33 per part,
    # 24 * 33 = 792, the last 8 emoji (16 units) in part 25 → 51 left.
    info = analyze(EMOJI * 800)
    assert math.ceil(info.units / 67) == 24
    assert shape(info) == (UCS2, 1600, 25, 67, 51)


def test_one_non_gsm_character_flips_the_whole_message() -> None:
    gsm = analyze("a" * 100)
    ucs2 = analyze("a" * 99 + "’")
    assert shape(gsm) == (GSM7, 100, 1, 160, 60)
    assert shape(ucs2) == (UCS2, 100, 2, 67, 34)  # 67 + 33


# --- personalization --------------------------------------------------------------------------

TEMPLATE = (
    "Hi {name}, your order #1234 is ready for pickup at our Osu store until 6pm today. "
    "Reply STOP to opt out."
)  # 98 characters without the name


@pytest.mark.parametrize(
    ("name", "expected", "culprits"),
    [
        ("Chloe", (GSM7, 103, 1, 160, 57), ()),
        ("Chloé", (GSM7, 103, 1, 160, 57), ()),  # é is in the GSM-7 table
        ("Zoë", (UCS2, 101, 2, 67, 33), (Ucs2Character("ë", "e"),)),  # ë is not
        ("Zoe", (GSM7, 101, 1, 160, 59), ()),
        ("Łukasz", (UCS2, 104, 2, 67, 30), (Ucs2Character("Ł", "L"),)),
        # 98 + 4 + 2 (surrogate pair) = 104 = 67 + 37
        ("Ama 🎉", (UCS2, 104, 2, 67, 30), (Ucs2Character("🎉", None),)),
    ],
)
def test_personalization_changes_encoding_and_cost(
    name: str, expected: tuple[str, int, int, int, int], culprits: tuple[Ucs2Character, ...]
) -> None:
    info = analyze(TEMPLATE.format(name=name))
    assert shape(info) == expected
    assert info.ucs2_characters == culprits


# --- culprits and suggestions -----------------------------------------------------------------


def test_ucs2_characters_lists_each_culprit_once_in_order_of_first_appearance() -> None:
    text = "Zoë’s “deal” — Zoë’s again… 😀 😀 ✓"
    assert analyze(text).ucs2_characters == (
        Ucs2Character("ë", "e"),
        Ucs2Character("’", "'"),
        Ucs2Character("“", '"'),
        Ucs2Character("”", '"'),
        Ucs2Character("—", "-"),
        Ucs2Character("…", "..."),
        Ucs2Character("😀", None),
        Ucs2Character("✓", None),
    )


def test_gsm7_text_has_no_culprits() -> None:
    assert analyze("Price: €5 [today] {only} ~ ^ | \\").ucs2_characters == ()


@pytest.mark.parametrize(
    ("char", "suggestion"),
    [
        ("“", '"'),
        ("”", '"'),
        ("„", '"'),
        ("«", '"'),
        ("»", '"'),
        ("‘", "'"),
        ("’", "'"),
        ("‹", "'"),
        ("`", "'"),
        ("–", "-"),  # en dash
        ("—", "-"),  # em dash
        ("−", "-"),  # minus sign
        ("…", "..."),
        ("\u00a0", " "),  # non-breaking space
        ("\u2009", " "),  # thin space
        ("\u202f", " "),  # narrow no-break space
        ("\u3000", " "),  # ideographic space
        ("\t", " "),
        ("\u2028", "\n"),
        ("\u200b", ""),  # zero-width space: invisible, dropped
        ("\ufeff", ""),
        ("\u00ad", ""),  # soft hyphen
        ("\u0301", ""),  # combining acute (decomposed text)
        ("á", "a"),
        ("í", "i"),
        ("ó", "o"),
        ("ú", "u"),
        ("â", "a"),
        ("ê", "e"),
        ("ô", "o"),
        ("ç", "c"),
        ("ã", "a"),
        ("õ", "o"),
        ("ë", "e"),
        ("Á", "A"),
        ("È", "E"),
        ("Ê", "E"),
        ("ł", "l"),
        ("Ł", "L"),
        ("œ", "oe"),
        ("ﬁ", "fi"),  # ligature
        ("\u2126", "Ω"),  # OHM SIGN -> GREEK CAPITAL OMEGA, which is GSM-7
        (EMOJI, None),
        ("🎉", None),
        ("✓", None),
        ("ж", None),  # Cyrillic
        ("α", None),  # Greek small letter: no GSM-7 stand-in
        ("你", None),
        ("µ", None),  # micro sign decomposes to Greek μ, not GSM-7
        ("²", None),  # a superscript is not a letter; "m2" would change the meaning
        ("\u200d", None),  # zero-width joiner: part of emoji sequences, left alone
        ("\ufe0f", None),  # emoji variation selector, left alone
    ],
)
def test_suggestion_for(char: str, suggestion: str | None) -> None:
    assert suggestion_for(char) == suggestion
    if suggestion is not None:
        assert is_gsm7(suggestion)


@pytest.mark.parametrize("char", ["é", "è", "à", "ì", "ò", "ù", "Ç", "ñ", "ä", "ö", "ü", "€"])
def test_gsm7_characters_are_never_culprits(char: str) -> None:
    assert analyze("x" + char).ucs2_characters == ()
    assert suggest_gsm(char) == char


def test_suggest_gsm_turns_typical_marketing_text_into_cheaper_gsm7() -> None:
    text = "“Summer Sale” – 20% off everything… Don’t miss out! Ends Sunday. Reply STOP to opt out."
    before = analyze(text)
    assert shape(before) == (UCS2, 87, 2, 67, 47)  # 67 + 20

    fixed = suggest_gsm(text)
    assert fixed == (
        '"Summer Sale" - 20% off everything... Don\'t miss out! Ends Sunday. Reply STOP to opt out.'
    )
    after = analyze(fixed)
    assert shape(after) == (GSM7, 89, 1, 160, 71)  # … became three characters
    assert after.ucs2_characters == ()
    assert after.segments < before.segments


def test_suggest_gsm_leaves_characters_without_a_suggestion() -> None:
    text = "Café’s “grand” opening 🎉 — Привет"
    assert suggest_gsm(text) == 'Café\'s "grand" opening 🎉 - Привет'
    assert analyze(suggest_gsm(text)).ucs2_characters == (
        Ucs2Character("🎉", None),
        Ucs2Character("П", None),
        Ucs2Character("р", None),
        Ucs2Character("и", None),
        Ucs2Character("в", None),
        Ucs2Character("е", None),
        Ucs2Character("т", None),
    )


def test_suggest_gsm_handles_decomposed_accents_and_invisible_characters() -> None:
    text = "Cafe\u0301\u200b Sa\u0303o\u00a0Paulo"  # é decomposed, ZWSP, ã decomposed, NBSP
    assert analyze(text).encoding == UCS2
    assert suggest_gsm(text) == "Cafe Sao Paulo"
    assert analyze(suggest_gsm(text)).encoding == GSM7


def test_suggest_gsm_is_identity_on_gsm7_text() -> None:
    text = "Hello @all: 50% off {today} [only] ~ €5\r\nÆøå ÄÖÑÜ§¿ äöñüà"
    assert suggest_gsm(text) == text
    assert suggest_gsm("") == ""


# --- value objects and invariants -------------------------------------------------------------


def test_results_are_frozen() -> None:
    info = analyze("Zoë")
    with pytest.raises(FrozenInstanceError):
        info.segments = 5  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        info.ucs2_characters[0].suggestion = "x"  # type: ignore[misc]


def test_code_point_shows_invisible_characters() -> None:
    assert Ucs2Character("\u00a0", " ").code_point == "U+00A0"
    assert Ucs2Character(EMOJI, None).code_point == "U+1F600"


def test_packed_count_bounds_on_random_texts() -> None:
    """Packing wastes at most one unit per part: ceil(u / p) <= parts <= ceil(u / (p - 1))."""
    rng = random.Random(20240601)
    alphabets = ["ab€[", "ab€ł", "a😀", "ł😀€"]
    for _ in range(300):
        text = "".join(rng.choice(rng.choice(alphabets)) for _ in range(rng.randint(0, 700)))
        info = analyze(text)
        assert info.units == (
            len(text.encode("utf-16-le")) // 2
            if info.encoding == UCS2
            else len(text) + sum(c in GSM7_EXTENSION for c in text)
        )
        single = 160 if info.encoding == GSM7 else 70
        if info.units <= single:
            assert (info.segments, info.per_segment) == (1, single)
            continue
        p = info.per_segment
        assert math.ceil(info.units / p) <= info.segments <= math.ceil(info.units / (p - 1))
        assert 0 <= info.remaining < p

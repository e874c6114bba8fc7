"""What a slide shows of a cell (bncourse.authoring.slide_content): pure functions, no deck."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bncourse.authoring.slide_content import (
    MAX_ITEM_WORDS,
    MAX_SLIDE_WORDS,
    chunk_visible,
    exercise_card,
    first_clause,
    first_sentence,
    prose_words,
    split_details,
    split_markdown,
    strip_notes_prefix,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("One. Two.", "One."),
        ("Is it? Yes.", "Is it?"),
        ("Use e.g. the mean. Then more.", "Use e.g. the mean."),
        ("Ioffe et al. (2015) found it. More.", "Ioffe et al. (2015) found it."),
        ("The value $x. y$ stays. Next.", "The value $x. y$ stays."),
        ("Call `f. g` now. Next.", "Call `f. g` now."),
        ("It is (see Sec. 2. below) fine. Next.", "It is (see Sec. 2. below) fine."),
        ("No full stop at all", "No full stop at all"),
        ("A list follows: then more. And more.", "A list follows: then more."),
        ("Ioffe, S. and Szegedy, C. (2015). Batch normalization. More.",
         "Ioffe, S. and Szegedy, C. (2015). Batch normalization."),
    ],
)
def test_first_sentence(text: str, expected: str) -> None:
    assert first_sentence(text) == expected


def test_a_long_first_sentence_is_cut_but_never_inside_math() -> None:
    words = " ".join(f"w{i}" for i in range(50)) + "."
    assert first_sentence(words, max_words=10) == " ".join(f"w{i}" for i in range(10)) + " …"
    inside = "a b c $x + y + z$ d."
    assert first_sentence(inside, max_words=4) == inside  # the cut would fall inside $...$


def test_a_list_item_keeps_its_first_clause() -> None:
    assert first_clause("Short item. More text.") == "Short item."
    long = "BN centres every pre-activation at the sigmoid's point of symmetry, so with β = 0 nothing."
    assert first_clause(long) == "BN centres every pre-activation at the sigmoid's point of symmetry …"
    assert len(first_clause(" ".join(["word"] * 40)).split()) <= MAX_ITEM_WORDS + 1


def test_the_slide_shows_headings_equations_bullets_and_a_first_sentence() -> None:
    cell = ("## Section\n\nFirst sentence here. Second sentence for the notes.\n\n"
            "$$\ny = \\gamma \\hat x + \\beta\n$$\n\nAnother paragraph, notes only.\n\n"
            "- item one. More about one.\n- item two\n\n| a | b |\n|---|---|\n| 1 | 2 |")
    shown = split_markdown(cell)
    assert shown.visible == ("## Section\n\nFirst sentence here.\n\n$$\ny = \\gamma \\hat x + \\beta\n$$\n\n"
                             "- item one.\n- item two\n\n| a | b |\n|---|---|\n| 1 | 2 |")
    assert shown.notes == cell.strip()  # the lecturer reads the whole cell


def test_a_cell_shown_whole_has_no_notes_and_an_override_wins() -> None:
    assert split_markdown("## Only a heading").notes == ""
    shown = split_markdown("## Long\n\nText. More.", override="**The point.**")
    assert shown.visible == "**The point.**" and shown.notes == "## Long\n\nText. More."
    assert split_markdown("Anything.", override="").visible == ""


def test_details_become_answers() -> None:
    cell = "1. Why?\n\n<details><summary>Answer</summary>\n\nBecause.\n</details>\n\nAfter."
    main, answers = split_details(cell)
    assert main == "1. Why?\n\n\n\nAfter." and answers == [("Answer", "Because.")]
    assert split_details("<details>\nNo summary.\n</details>")[1] == [("Answers", "No summary.")]


def test_notes_prefix_is_dropped() -> None:
    for text in ("Speaker notes: stress it.", "**Speaker notes:** stress it.", "speaker note: stress it."):
        assert strip_notes_prefix(text) == "stress it."
    assert strip_notes_prefix("Notes on speakers.") == "Notes on speakers."


def test_prose_words_skip_math_code_and_markup() -> None:
    assert prose_words("## Title\n\n- a $x + y$ and `code here` b\n\n<b>bold</b>") == 5


def test_exercise_card_names_it_and_shows_no_body() -> None:
    source = 'def f(x, eps=1e-5):\n    """Twice x, plus eps.\n\n    Args: ...\n    """\n    secret = 2 * x\n    return secret\n'
    card = exercise_card(source)
    assert card is not None
    assert "f(x, eps=1e-05)" in card and "Twice x, plus eps." in card
    assert "secret" not in card and "Args" not in card
    assert exercise_card("x = 1\n") is None and exercise_card("def (:\n") is None


_item = st.lists(st.sampled_from(["alpha", "beta", "$x$", "`c`", "gamma", "delta"]), min_size=1, max_size=14)


@settings(max_examples=60, deadline=None)
@given(st.lists(_item, min_size=1, max_size=25), st.integers(min_value=15, max_value=60))
def test_chunks_keep_every_item_in_order_and_stay_under_the_limit(items: list[list[str]], limit: int) -> None:
    visible = "## Heading\n\n" + "\n".join("- " + " ".join(words) for words in items)
    parts = chunk_visible(visible, max_words=limit)
    bullets = [line for part in parts for line in part.splitlines() if line.startswith("- ")]
    assert bullets == [line for line in visible.splitlines() if line.startswith("- ")]
    assert all(prose_words(p) <= limit for p in parts) or len(parts) == len(bullets)
    if prose_words(visible) <= limit:
        assert parts == [visible]


def test_chunks_are_even() -> None:
    visible = "## T\n\n" + "\n".join(f"- item {i} has five words" for i in range(10))
    sizes = [prose_words(p) for p in chunk_visible(visible, MAX_SLIDE_WORDS)]
    assert len(sizes) == 2 and max(sizes) - min(sizes) <= 6  # not 41 + 10


def test_table_rows_carry_their_header_to_the_next_slide() -> None:
    rows = "\n".join(f"| row {i} with several words in it | and more words here too |" for i in range(8))
    parts = chunk_visible("| a | b |\n|---|---|\n" + rows, max_words=30)
    assert len(parts) > 1 and all(p.startswith("| a | b |\n|---|---|") for p in parts)


def test_a_heading_goes_to_the_slide_of_what_it_heads() -> None:
    lead = "# Title\n\n" + " ".join(["word"] * 40) + "\n\n## Next part\n\n"
    parts = chunk_visible(lead + "- " + " ".join(["item"] * 10), max_words=45)
    assert [p.splitlines()[0] for p in parts] == ["# Title", "## Next part"]


def test_a_display_equation_in_a_bullet_stays_on_the_slide() -> None:
    cell = "- At test time BN is affine, so it is a diagonal matrix, as here:\n  $$ y = D x + c $$\n  and more text."
    visible = split_markdown(cell).visible
    assert "$$ y = D x + c $$" in visible and "and more text" not in visible


def test_sections_start_new_slides_and_a_table_stays_whole() -> None:
    first = "## Summary\n\n" + "\n".join(f"- point {i} with a few words" for i in range(8))
    second = "## Further reading\n\n- Ioffe and Szegedy (2015)."
    parts = chunk_visible(first + "\n\n" + second, max_words=45)
    assert parts[-1] == second and all("Further" not in p for p in parts[:-1])
    table = "### Estimates\n\n| estimate | what it averages |\n|---|---|\n" + "\n".join(
        f"| name {i} | several words of explanation here |" for i in range(5))
    assert chunk_visible(table, max_words=45) == [table]  # 55 words, one table: one slide


def test_a_list_right_under_a_heading_is_kept() -> None:
    visible = split_markdown("## What you will learn\n- one thing. And more.\n- two").visible
    assert visible == "## What you will learn\n\n- one thing.\n- two"


def test_a_question_is_shown_whole() -> None:
    cell = "1. $x_2$ is 100× larger than $x_1$: how much larger is the curvature, and why? Hint: look at it."
    assert split_markdown(cell).visible == "1. $x_2$ is 100× larger than $x_1$: how much larger is the curvature, and why?"

"""Splitting free-text eligibility criteria: the seed trial in all its renderings, each marker and
heading form found in the corpus, and the no-loss property over the whole corpus."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from adapter.readers.ctgov_json import read_study
from adapter.readers.ctgov_xml import read_clinical_study
from mappings.criteria import (
    _CONNECTORS,
    Criterion,
    Heading,
    _collapse_whitespace,
    _dangling,
    _introduces,
    _is_connector,
    outline,
    split_criteria,
    unescape_markdown,
)

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "fixtures" / "seed"
CORPUS = ROOT.parent / "shared" / "corpus"

PAIRED = ["NCT00000410", "NCT00007696", "NCT00492635", "NCT00498680", "NCT00499317", "NCT02513394", "NCT03478891"]


def _textblock(path: Path) -> str | None:
    return etree.parse(str(path)).findtext(".//eligibility/criteria/textblock")


def _v2_text(path: Path) -> str | None:
    return json.loads(path.read_text(encoding="utf-8"))["protocolSection"]["eligibilityModule"].get(
        "eligibilityCriteria"
    )


def _squashed(criteria: list[Criterion]) -> list[tuple[str, bool, str | None]]:
    return [(re.sub(r"\s+", " ", c.text), c.exclude, c.heading) for c in criteria]


# --- the seed trial --------------------------------------------------------------------------------


SEED_INCLUSION_1 = """Diagnosis of MS
  a. Relapsing remitting MS (RRMS) not responding to at least a year of attempted therapy with one or more \
of the approved therapies (beta-interferon, glatiramer acetate, natalizumab, mitoxantrone, fingolimod) as evidenced \
by one or more of the following: i. ≥1 clinically documented relapse in past 12 months
    ii. ≥2 clinically documented relapses in last 24 months
    iii. ≥1 GEL at MRI performed within the last 12 months
  b. Secondary progressive MS (SPMS) not responding to at least a year of attempted therapy with one or more \
of the approved therapies (beta-interferon, glatiramer acetate, natalizumab, mitoxantrone, fingolimod) as evidenced \
by both:
    i. an increase of ≥1 point of the expanded disability status scale (EDSS) (if at randomization EDSS ≤ 5.0) \
or 0.5 EDSS point (if at randomization EDSS ≥ 5.5) in the last 12 months
    ii. ≥1 clinically documented relapse or ≥ 1 GEL at MRI within the last twelve months.
  c. Primary progressive MS (PPMS) patients with all the following features:
    i. an increase of ≥1 EDSS point (if at randomization EDSS ≤ 5.0) or 0.5 EDSS point (if at randomization \
EDSS ≥5.5), in the last twelve months
    ii. ≥ 1 GEL at MRI performed within the last 12 months
    iii. positive cerebrospinal fluid (CSF) (oligoclonal banding"""


def _check_seed(criteria: list[Criterion]) -> None:
    inclusion = [c for c in criteria if not c.exclude]
    exclusion = [c for c in criteria if c.exclude]
    assert [c.text for c in inclusion] == [
        SEED_INCLUSION_1,
        "Age 18 to 50 years",
        "Disease duration 2 to 10 years (included)",
        "EDSS 3.0 to 6.5",
    ]
    assert len(exclusion) == 14
    assert exclusion[0].text == "RRMS not fulfilling inclusion criteria"
    assert exclusion[3].text == (
        "Any active or chronic infection including infection with HIV1-2 or chronic Hepatitis B or Hepatitis C"
    )
    assert exclusion[12].text == (
        "eGFR < 60 mL/min/1.73m2 or known renal failure or inability to undergo MRI examination."
    )
    assert criteria.index(exclusion[0]) == 4, "inclusion criteria come first, in document order"
    assert all(c.heading is None for c in criteria)


def test_seed_legacy_textblock() -> None:
    """The hard-wrapped XML text with its "-  1." bullets, as stored and as a reader strips it."""
    raw = _textblock(SEED / "NCT01854957.xml")
    assert raw is not None
    _check_seed(split_criteria(raw))
    _check_seed(split_criteria(raw.strip()))


def test_seed_through_the_readers() -> None:
    xml = read_clinical_study((SEED / "NCT01854957.xml").read_bytes())
    _check_seed(split_criteria(xml.eligibility.criteria))
    v2 = SEED / "NCT01854957.json"
    if not v2.exists():
        pytest.skip("v2 JSON copy of the seed trial not present")
    record = read_study(json.loads(v2.read_text(encoding="utf-8")))
    _check_seed(split_criteria(record.eligibility.criteria))


def test_seed_v2_text_matches_legacy_text() -> None:
    """v2 writes the same text as markdown ("* 2\\. Age"); criteria agree modulo whitespace."""
    v2 = SEED / "NCT01854957.json"
    if not v2.exists():
        pytest.skip("v2 JSON copy of the seed trial not present")
    legacy = split_criteria(_textblock(SEED / "NCT01854957.xml"))
    assert _squashed(split_criteria(_v2_text(v2))) == _squashed(legacy)


def test_seed_registry_page_lines_are_criteria_or_inside_one() -> None:
    """Every criterion line the registry page shows ("* 2\\. Age ...") is found in our criteria."""
    page = (SEED / "MESEMS-NCT01854957-registry-page.txt").read_text(encoding="utf-8").splitlines()
    start = page.index("Inclusion Criteria") + 1
    end = next(i for i in range(start, len(page)) if page[i] == "18 Years")
    criteria = " ".join(re.sub(r"\s+", " ", c.text) for c in split_criteria(_textblock(SEED / "NCT01854957.xml")))
    for line in page[start:end]:
        text = unescape_markdown(re.sub(r"^\* \d+\\\. ", "", line))
        assert text in criteria, line


# --- markers and nesting ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "* Adults\n* Consent",
        "- Adults\n- Consent",
        "• Adults\n• Consent",
        "•Adults\n•Consent",
        "1. Adults\n2. Consent",
        "1) Adults\n2) Consent",
        "(1) Adults\n(2) Consent",
        "1\\. Adults\n2\\. Consent",
        "* 1\\. Adults\n* 2\\. Consent",
        "1.Adults\n2.Consent",
        "a. Adults\nb. Consent",
        "A) Adults\nB) Consent",
        "i. Adults\nii. Consent",
        "① Adults\n② Consent",
        "o Adults\no Consent",
        "Adults\n\nConsent",
        "  -  Adults\n\n  -  Consent",
    ],
)
def test_markers_are_stripped_from_top_level_items(text: str) -> None:
    assert [(c.text, c.exclude) for c in split_criteria(text)] == [("Adults", False), ("Consent", False)]


def test_indented_sub_items_stay_in_their_parent() -> None:
    text = "* Adequate organ function:\n\n  * ANC ≥ 1500\n  * Platelets ≥ 100000\n\n    * unless transfused\n* Consent"
    assert [c.text for c in split_criteria(text)] == [
        "Adequate organ function:\n  - ANC ≥ 1500\n  - Platelets ≥ 100000\n    - unless transfused",
        "Consent",
    ]


def test_legacy_nested_bullets() -> None:
    text = (
        "DISEASE CHARACTERISTICS:\n\n  -  Newly diagnosed leukemia\n\n       -  No infants\n\n"
        "       -  CNS disease permitted\n\n  -  No B-cell ALL"
    )
    criteria = split_criteria(text)
    assert [c.text for c in criteria] == [
        "Newly diagnosed leukemia\n  - No infants\n  - CNS disease permitted",
        "No B-cell ALL",
    ]
    assert {c.heading for c in criteria} == {"DISEASE CHARACTERISTICS"}


def test_letters_and_romans_under_a_number_at_the_same_indentation() -> None:
    text = "1. Disease:\n\na. first\n\ni. detail\n\nii. detail\n\nb. second\n\n2. Age over 18"
    assert [c.text for c in split_criteria(text)] == [
        "Disease:\n  a. first\n    i. detail\n    ii. detail\n  b. second",
        "Age over 18",
    ]


def test_i_after_h_is_a_letter() -> None:
    text = "1. Labs:\n\n" + "\n\n".join(f"{c}. value {c}" for c in "abcdefghij") + "\n\n2. Consent"
    first = split_criteria(text)[0].text.split("\n")
    assert first[9] == "  i. value i" and first[10] == "  j. value j", "i. is a sibling of h., not its child"


def test_enumerations_after_an_announcing_bullet() -> None:
    text = "* Must meet one of the following criteria, a) or b):\n\na) relapsed\n\nb) refractory\n\n* Consent"
    assert [c.text for c in split_criteria(text)] == [
        "Must meet one of the following criteria, a) or b):\n  a) relapsed\n  b) refractory",
        "Consent",
    ]


def test_decimal_outline_numbers_nest_and_stay_in_the_text() -> None:
    text = "1\\. Diagnosis\n\n1.1 Lymphocytosis\n\n1.1.1 Mature cells\n\n1.2 Staging\n\n2\\. Age over 18"
    assert [c.text for c in split_criteria(text)] == [
        "Diagnosis\n  1.1 Lymphocytosis\n    1.1.1 Mature cells\n  1.2 Staging",
        "Age over 18",
    ]


def test_hard_wrapped_lines_join_their_item() -> None:
    text = (
        "Inclusion Criteria:\n\n"
        "          -  Any active or chronic infection including infection with HIV1-2 or chronic\n"
        "             Hepatitis B or Hepatitis C\n\n        Subjects must be\n        able to consent."
    )
    assert [c.text for c in split_criteria(text)] == [
        "Any active or chronic infection including infection with HIV1-2 or chronic Hepatitis B or Hepatitis C",
        "Subjects must be able to consent.",
    ]


def test_wrapped_line_that_looks_like_a_marker_is_a_continuation() -> None:
    # NCT00002733: the legacy text wraps at column 100, here just before "B) No known ...".
    text = (
        "        oxygen requirement Not dyspneic at rest Other: No chronic auto-coagulation (preferred) No\n"
        "        active infection No chronic underlying immunodeficiency disease (including HIV, hepatitis\n"
        "        B) No known autoimmune disease Not pregnant"
    )
    assert [c.text for c in split_criteria(text)] == [
        "oxygen requirement Not dyspneic at rest Other: No chronic auto-coagulation (preferred) No active "
        "infection No chronic underlying immunodeficiency disease (including HIV, hepatitis B) No known autoimmune "
        "disease Not pregnant"
    ]


def test_line_breaks_of_unwrapped_text_separate_criteria() -> None:
    """WHO ICTRP texts (e.g. DRKS) put one criterion per line, without blank lines or markers."""
    text = "Inclusion Criteria:\n\nFemale patients with recurrent miscarriage.\nMale patients with suspected FMF.\n"
    assert [c.text for c in split_criteria(text)] == [
        "Female patients with recurrent miscarriage.",
        "Male patients with suspected FMF.",
    ]


def test_empty_bullets_are_dropped() -> None:
    assert [c.text for c in split_criteria("Exclusion Criteria:\n\n-\n\n* Pregnancy")] == ["Pregnancy"]


def test_or_joins_alternatives_into_one_criterion() -> None:
    criteria = split_criteria("* Age ≥ 60 Years\n\nOR\n\n* Relapsed disease\n* Consent")
    assert [c.text for c in criteria] == ["Age ≥ 60 Years\nOR\nRelapsed disease", "Consent"]
    criteria = split_criteria("* Creatinine no greater than 1.5 mg/dL OR\n* Clearance at least 50 mL/min\n* Consent")
    assert [c.text for c in criteria] == [
        "Creatinine no greater than 1.5 mg/dL OR\nClearance at least 50 mL/min",
        "Consent",
    ]


def test_markdown_escapes_are_removed() -> None:
    assert split_criteria("* eGFR \\< 60 \\[mL/min\\]")[0].text == "eGFR < 60 [mL/min]"
    assert unescape_markdown("a \\* b \\\\ c") == "a * b \\ c"


# --- headings -------------------------------------------------------------------------------------


def test_no_heading_means_inclusion() -> None:
    criteria = split_criteria("Men and women, ages 30-69. Hypertension.")
    assert criteria == [Criterion("Men and women, ages 30-69. Hypertension.", False, None)]


@pytest.mark.parametrize(
    ("heading", "exclude", "kept"),
    [
        ("Inclusion Criteria:", False, None),
        ("Inclusion criteria", False, None),
        ("INCLUSION CRITERIA:", False, None),
        ("Exclusion Criteria", True, None),
        ("EXCLUSION CRITERIA:", True, None),
        ("Key Inclusion Criteria:", False, "Key Inclusion Criteria"),
        ("Key Exclusion Criteria:", True, "Key Exclusion Criteria"),
        ("Main Exclusion Criteria:", True, "Main Exclusion Criteria"),
        ("Non-inclusion Criteria:", True, "Non-inclusion Criteria"),
        ("Patients will be excluded if:", True, "Patients will be excluded if"),
        (
            "Subjects presenting with any of the following will not be included in the trial:",
            True,
            "Subjects presenting with any of the following will not be included in the trial",
        ),
        ("Inclusion criteria for the cases :", False, "Inclusion criteria for the cases"),
        ("Eligibility criteria:", False, "Eligibility criteria"),
    ],
)
def test_section_headings(heading: str, exclude: bool, kept: str | None) -> None:
    # Start in the opposite section so the heading has to switch it.
    opposite = "Inclusion Criteria:" if exclude else "Exclusion Criteria:"
    criteria = split_criteria(f"{opposite}\n\n* first\n\n{heading}\n\n* second")
    assert criteria[-1] == Criterion("second", exclude, kept)


def test_inclusion_and_exclusion_heading_changes_nothing() -> None:
    criteria = split_criteria("Inclusion and Exclusion criteria:\n\n* Adults")
    assert criteria == [Criterion("Adults", False, "Inclusion and Exclusion criteria")]


def test_heading_as_a_list_item() -> None:
    text = "-  INCLUSION CRITERIA:\n\nAdults\n\n* Exclusion criteria:\n\n  1. Pregnancy"
    assert [(c.text, c.exclude) for c in split_criteria(text)] == [("Adults", False), ("Pregnancy", True)]


def test_criteria_that_mention_criteria_are_not_headings() -> None:
    text = "Exclusion Criteria:\n\n* RRMS not fulfilling inclusion criteria\n* No eligibility criteria"
    assert [(c.text, c.exclude) for c in split_criteria(text)] == [
        ("RRMS not fulfilling inclusion criteria", True),
        ("No eligibility criteria", True),
    ]
    assert split_criteria("No eligibility criteria") == [Criterion("No eligibility criteria", False, None)]


def test_nci_sections_and_their_sub_headings() -> None:
    text = (
        "DISEASE CHARACTERISTICS:\n\n  -  Histologically confirmed melanoma\n\nPATIENT CHARACTERISTICS:\n\n"
        "Age:\n\n  -  18 and over\n\nHepatic:\n\n  -  Bilirubin normal\n\n  -  No hepatitis\n\nOTHER:\n\n"
        "HIV negative.\n\nNo pregnant or nursing women."
    )
    assert [(c.text, c.heading, c.exclude) for c in split_criteria(text)] == [
        ("Histologically confirmed melanoma", "DISEASE CHARACTERISTICS", False),
        ("18 and over", "PATIENT CHARACTERISTICS / Age", False),
        ("Bilirubin normal", "PATIENT CHARACTERISTICS / Hepatic", False),
        ("No hepatitis", "PATIENT CHARACTERISTICS / Hepatic", False),
        ("HIV negative.", "OTHER", False),
        ("No pregnant or nursing women.", "OTHER", False),
    ]


def test_v2_nci_sub_headings_without_colon() -> None:
    text = "PATIENT CHARACTERISTICS:\n\nAge\n\n* 18 and over\n\nPerformance status\n\n* Zubrod 0-2"
    assert [(c.text, c.heading) for c in split_criteria(text)] == [
        ("18 and over", "PATIENT CHARACTERISTICS / Age"),
        ("Zubrod 0-2", "PATIENT CHARACTERISTICS / Performance status"),
    ]


def test_inline_headings() -> None:
    text = (
        "DISEASE CHARACTERISTICS: Histologically confirmed carcinoma\n\n"
        "PATIENT CHARACTERISTICS: Age: Not specified Performance status: GOG 0-2"
    )
    assert [(c.text, c.heading) for c in split_criteria(text)] == [
        ("Histologically confirmed carcinoma", "DISEASE CHARACTERISTICS"),
        ("Age: Not specified Performance status: GOG 0-2", "PATIENT CHARACTERISTICS"),
    ]
    criteria = split_criteria("Inclusion Criteria:- Males with ED- Stable relationship Exclusion Criteria: Nitrate use")
    assert [(c.text, c.exclude) for c in criteria] == [
        ("Males with ED- Stable relationship", False),
        ("Nitrate use", True),
    ]
    criteria = split_criteria(
        "PROTOCOL ENTRY CRITERIA:\n\n--Disease Characteristics-- Cystic fibrosis --Prior/Concurrent Therapy-- None"
    )
    assert [(c.text, c.heading) for c in criteria] == [
        ("Cystic fibrosis", "Disease Characteristics"),
        ("None", "Prior/Concurrent Therapy"),
    ]


def test_lead_in_line_is_the_heading_of_its_list() -> None:
    text = "Inclusion Criteria:\n\nPatients must meet one of the following:\n\n* Relapsed\n* Refractory\n\nAge over 18."
    assert [(c.text, c.heading) for c in split_criteria(text)] == [
        ("Relapsed", "Patients must meet one of the following"),
        ("Refractory", "Patients must meet one of the following"),
        ("Age over 18.", None),
    ]


def test_outline_keeps_headings_in_order() -> None:
    items = outline("Inclusion Criteria:\n\n* Adults\n\nExclusion Criteria:\n\n* Pregnancy")
    assert items == [
        Heading("Inclusion Criteria:", 1),
        Criterion("Adults", False, None),
        Heading("Exclusion Criteria:", 1),
        Criterion("Pregnancy", True, None),
    ]


@pytest.mark.parametrize("text", [None, "", "  \n\n "])
def test_no_text_no_criteria(text: str | None) -> None:
    assert split_criteria(text) == []


# --- corpus ---------------------------------------------------------------------------------------

_MARKER_TOKEN = re.compile(r"(\\?[*+\-]|[•·▪◦●○■□➢►✓o]|\(?(\d{1,3}|[A-Za-z]|[ivxIVX]{2,5})\\?[.)])")
_GLUED_MARKER = re.compile(r"^([•▪◦●○■□➢►\u2460-\u2473]+|\d{1,3}\.(?=[A-Z]))")


def _words(text: str) -> list[str]:
    """The words of a text modulo list markers (and the spacing around a colon, which splitting adds)."""
    out = []
    for token in re.sub(r":(?=\S)", ": ", unescape_markdown(text)).split():
        token = _GLUED_MARKER.sub("", token)
        if token and not _MARKER_TOKEN.fullmatch(token):
            out.append(token)
    return out


def _corpus_texts() -> Iterator[tuple[str, str]]:
    for path in sorted((CORPUS / "ctgov-v2-json").glob("*.json")):
        text = _v2_text(path)
        if text:
            yield path.name, text
    for path in sorted((CORPUS / "ctgov-xml").glob("*.xml")):
        text = _textblock(path)
        if text and text.strip():
            yield path.name, text


def test_nothing_is_lost_over_the_corpus() -> None:
    """Criteria and headings, in order, hold exactly the words of the text (every v2 and legacy record)."""
    if not (CORPUS / "ctgov-v2-json").is_dir():
        pytest.skip("corpus not available")
    count = 0
    for name, text in _corpus_texts():
        items = outline(text)
        assert [w for item in items for w in _words(item.text)] == _words(text), name
        assert all(item.text.strip() for item in items), name
        count += 1
    assert count > 3000


def test_paired_records_give_the_same_criteria() -> None:
    """The seven studies stored in both formats: v2 markdown and legacy textblock agree modulo whitespace."""
    if not (CORPUS / "ctgov-xml").is_dir():
        pytest.skip("corpus not available")
    for nct in PAIRED:
        v2 = split_criteria(_v2_text(CORPUS / "ctgov-v2-json" / f"{nct}.json"))
        legacy = split_criteria(_textblock(CORPUS / "ctgov-xml" / f"{nct}.xml"))
        assert _squashed(v2) == _squashed(legacy), nct
        assert v2, nct


def test_fixtures_through_the_readers_keep_every_word() -> None:
    for path in sorted((ROOT / "fixtures" / "ctgov-v2-json").glob("*.json")):
        text = read_study(json.loads(path.read_text(encoding="utf-8"))).eligibility.criteria
        assert [w for item in outline(text) for w in _words(item.text)] == _words(text or ""), path.name
    for path in sorted((ROOT / "fixtures" / "ctgov-xml").glob("*.xml")):
        text = read_clinical_study(path.read_bytes()).eligibility.criteria
        assert [w for item in outline(text) for w in _words(item.text)] == _words(text or ""), path.name


# --- fast paths: each gives the answer of the plain computation it short-cuts ------------------------


@pytest.mark.parametrize(
    "text",
    ["", "a b", "a  b", " a", "a ", "a\tb", "a\u00a0b", "a \u2003 b", "a\x1cb", "a\u200bb", "≥ 18 µg/L", "  "],
)
def test_whitespace_collapse_matches_the_pattern(text: str) -> None:
    assert _collapse_whitespace(text) == re.sub(r"\s+", " ", text).strip()


@pytest.mark.parametrize(
    "text",
    ["one of the following", "FOLLOWING criteria", "Following", "followings", "followed by", "criteria:", "x", ""],
)
def test_following_prefilter_matches_the_pattern(text: str) -> None:
    assert _introduces(text) == (text.rstrip().endswith(":") or bool(re.search(r"\bfollowing\b", text, re.I)))


@pytest.mark.parametrize(
    "text", ["A or", "A OR", "a and/or", "A\nor", "color", "A or\n", "x" * 200 + " or", "x" * 200 + "or", "or", "Or:"]
)
def test_trailing_or_tail_search_matches_the_whole_text_search(text: str) -> None:
    expected = text.casefold() in _CONNECTORS or bool(re.search(r"\s(?:or|and/or)$", text, re.I))
    assert _dangling(text) == expected


@pytest.mark.parametrize("text", ["OR", "Either:", "AND/OR", "ors", "either or", "x" * 50, ""])
def test_connector_length_check_matches_the_set_lookup(text: str) -> None:
    assert _is_connector(text) == (text.casefold() in _CONNECTORS)


def test_inline_headings_need_a_colon_or_dashes() -> None:
    """Paragraphs without either skip the inline-heading patterns: the pair shows what each adds."""
    assert [item.text for item in outline("DISEASE CHARACTERISTICS: Confirmed carcinoma")] == [
        "DISEASE CHARACTERISTICS:",
        "Confirmed carcinoma",
    ]
    assert [item.text for item in outline("DISEASE CHARACTERISTICS Confirmed carcinoma")] == [
        "DISEASE CHARACTERISTICS Confirmed carcinoma"
    ]
    assert [item.text for item in outline("--Disease Characteristics-- Cystic fibrosis")] == [
        "--Disease Characteristics--",
        "Cystic fibrosis",
    ]


def test_long_capitals_heading_depends_on_whether_the_text_shouts() -> None:
    """Up to 4 words a capitals line with a colon is a heading, up to 8 only in a text that does not shout."""
    for heading, shouting, expected in [
        ("PRIOR THERAPY:", True, True),
        ("PRIOR CONCURRENT THERAPY FOR DISEASE:", True, False),
        ("PRIOR CONCURRENT THERAPY FOR DISEASE:", False, True),
        ("PRIOR CONCURRENT THERAPY FOR THE MAIN DISEASE OF TODAY:", False, False),
    ]:
        body = "NO PRIOR CHEMOTHERAPY ALLOWED" if shouting else "No prior chemotherapy allowed"
        items = outline(f"{heading}\n\n{body}")
        assert isinstance(items[0], Heading) == expected, heading

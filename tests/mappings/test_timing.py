"""Timing extraction: real sentences from the corpus (record ids in comments), each pattern and its negatives."""

from __future__ import annotations

import re
import string
import sys
from collections.abc import Callable

import pytest

from mappings import timing
from mappings.fhir import UCUM
from mappings.timing import ExtractedTiming, Quantity, extract_timing, unit_code

SEED_ARM = (
    "At week 0 a single infusion of either ex-vivo expanded autologous MSC or suspension media will be "
    "administered intravenously at a dose of 1-2 x 1000000 MSC/Kg body weight. At week 24, another infusion "
    "will be performed for cross-over re-treatment: at week 24 treatments will be reversed compared to week 0"
)


def _only(timing: ExtractedTiming, kind: str) -> None:
    """Nothing but ``kind`` was extracted (precision: no stray statements)."""
    for other in ("timepoints", "repeats", "cycles", "washouts", "crossovers"):
        if other != kind:
            assert getattr(timing, other) == (), other


# --- timepoints and crossovers -----------------------------------------------------------------


def test_seed_arm_description_weeks_and_reversal() -> None:
    timing = extract_timing(SEED_ARM)  # NCT01854957, both arms
    assert [(p.value, p.unit, p.ordinal) for p in timing.timepoints] == [(0, "wk", True), (24, "wk", True)]
    chain = timing.ordinal_chains()["wk"]
    assert [p.label for p in chain] == ["week 0", "week 24"]
    assert chain[1].offset_from(chain[0]) == Quantity(24, "wk")
    assert timing.repeats == () and timing.cycles == () and timing.washouts == ()
    # "cross-over re-treatment" and "treatments will be reversed" both start at week 24
    assert {(c.at.value, c.at.unit) for c in timing.crossovers if c.at} == {(24, "wk")}
    assert any(c.reversal for c in timing.crossovers)
    starts = timing.period_starts()
    assert len(starts) == 1
    assert starts[0].at is not None and starts[0].at.label == "week 24"


def test_seed_detailed_description_reversal_at_6_months() -> None:
    # NCT01854957 detailed description
    timing = extract_timing(
        "Patients will be randomized to receive immediate vs. delayed treatment with either a dose equal to "
        "1-2 millions/kg of body weight of autologous MSC, or equivalent volume of suspension media at baseline. "
        "At 6 months treatments will be reversed."
    )
    (crossover,) = timing.crossovers
    assert crossover.reversal
    assert crossover.at is not None
    assert (crossover.at.value, crossover.at.unit, crossover.at.ordinal) == (6, "mo", False)
    assert timing.period_starts() == [crossover]


def test_crossover_at_elapsed_time_after_marker() -> None:
    timing = extract_timing("The patient crosses over at 90 days")  # NCT05484167 model description
    (crossover,) = timing.crossovers
    assert crossover.at is not None
    assert (crossover.at.value, crossover.at.unit, crossover.at.ordinal) == (90, "d", False)
    assert not crossover.reversal


def test_crossover_after_weeks() -> None:
    (crossover,) = extract_timing("Participants crossover after 8 weeks of treatment.").crossovers
    assert crossover.at is not None and (crossover.at.value, crossover.at.unit) == (8, "wk")


def test_ordinal_days_chain_day_1_and_day_15() -> None:
    # NCT00462345
    timing = extract_timing(
        "Participants received rituximab 1000 milligrams (mg), intravenously (IV), on Day 1 and Day 15."
    )
    _only(timing, "timepoints")
    day1, day15 = timing.ordinal_chains()["d"]
    assert (day1.label, day15.label) == ("day 1", "day 15")
    assert day15.offset_from(day1) == Quantity(14, "d")


def test_ordinal_weeks_list() -> None:
    # NCT02552212
    timing = extract_timing(
        "Certolizumab Pegol (CZP) 400 mg subcutaneous (sc) on Weeks 0, 2 and 4, followed by 200 mg CZP sc every "
        "2 weeks (Q2W) from Week 6 onwards."
    )
    assert [p.value for p in timing.ordinal_chains()["wk"]] == [0, 2, 4, 6]
    assert {(r.frequency, r.period, r.period_unit) for r in timing.repeats} == {(1, 2, "wk")}


def test_elapsed_timepoints_with_stated_reference() -> None:
    timing = extract_timing("Questionnaires are completed at 6 and 12 months after randomization.")
    assert [(p.value, p.unit, p.ordinal) for p in timing.elapsed()] == [(6, "mo", False), (12, "mo", False)]


# --- repeats ---------------------------------------------------------------------------------


def test_twice_daily_for_weeks() -> None:
    (repeat,) = extract_timing("Metformin 850 mg tablets twice daily for 52 weeks").repeats  # NCT02514629
    assert (repeat.frequency, repeat.period, repeat.period_unit) == (2, 1, "d")
    assert repeat.bounds == Quantity(52, "wk")
    assert repeat.to_fhir() == {
        "repeat": {
            "boundsDuration": {"value": 52, "unit": "weeks", "system": UCUM, "code": "wk"},
            "frequency": 2,
            "period": 1,
            "periodUnit": "d",
        }
    }


def test_every_3_weeks_for_6_cycles() -> None:
    # NCT00001379
    (repeat,) = extract_timing(
        "For LYG Grade 3: EPOCH-R (etoposide, prednisone, vincristine, cyclophosphamide, doxorubicin, rituxan) "
        "every 3 weeks for 6 cycles"
    ).repeats
    assert repeat.to_fhir() == {"repeat": {"count": 6, "frequency": 1, "period": 3, "periodUnit": "wk"}}


def test_q3w_for_4_cycles() -> None:
    # NCT05756972
    timing = extract_timing(
        "Subjects will be administered with PM8002 plus pemetrexed and carboplatin via intravenously (IV) Q3W "
        "for 4 cycles, followed by PM8002 and pemetrexed until progression or for a maximum of 2 years."
    )
    (repeat,) = timing.repeats
    assert (repeat.period, repeat.period_unit, repeat.count) == (3, "wk", 4)


@pytest.mark.parametrize(
    ("sentence", "frequency", "period", "unit", "bounds"),
    [
        ("20ug/dose, BID for 7 days 0.1 ml to each nostril", 2, 1, "d", Quantity(7, "d")),  # NCT01341548
        ("Peptide T given intranasally at a dosage of 2mg 3 times a day for 6 months", 3, 1, "d", Quantity(6, "mo")),
        ("Double-blind adalimumab 40 mg every other week by subcutaneous injection", 1, 2, "wk", None),  # NCT00055497
        ("Acamprosate 1998 mg tid", 3, 1, "d", None),  # NCT00463346
        ("Patients with complete resection undergo radiotherapy 5 days a week for 5.6 weeks.", 5, 1, "wk",
         Quantity(5.6, "wk")),  # NCT00002624
    ],
)  # fmt: skip
def test_repeat_patterns(sentence: str, frequency: int, period: int, unit: str, bounds: Quantity | None) -> None:
    (repeat,) = extract_timing(sentence).repeats
    assert (repeat.frequency, repeat.period, repeat.period_unit, repeat.bounds) == (frequency, period, unit, bounds)


def test_short_bound_is_the_length_of_each_occurrence() -> None:
    # NCT01996852: 10 minutes each day, not a 10-minute schedule
    (repeat,) = extract_timing("use the pump every day for 10min.").repeats
    assert repeat.duration == Quantity(10, "min")
    assert repeat.bounds is None
    assert repeat.to_fhir()["repeat"]["duration"] == 10
    assert repeat.to_fhir()["repeat"]["durationUnit"] == "min"


def test_count_of_doses() -> None:
    # NCT00004889
    (repeat,) = extract_timing(
        "375 mg/m2 given as an intravenous (IV) infusion once weekly for four doses (days 1, 8, 15, and 22)."
    ).repeats
    assert (repeat.frequency, repeat.period_unit, repeat.count) == (1, "wk", 4)


# --- cycles ------------------------------------------------------------------------------------


def test_days_of_each_cycle() -> None:
    # NCT00496223
    (cycle,) = extract_timing("Sunitinib will be given PO once daily on days 1-14 of each 21 day cycle.").cycles
    assert cycle.length == Quantity(21, "d")
    assert cycle.days == ((1, 14),)
    assert cycle.to_fhir() == {"repeat": {"period": 21, "periodUnit": "d"}}


def test_days_1_5_of_a_cycle() -> None:
    (cycle,) = extract_timing("9 µg/kg by vein Days 1-5 of a 21 day cycle.").cycles  # NCT00493129
    assert cycle.days == ((1, 5),)


def test_cycle_day_one_in_words_and_count_range() -> None:
    # NCT03058094
    (cycle,) = extract_timing(
        "pemetrexed 500 mg/m2 + cisplatin 75 mg/m2 on day one of 21-day cycle, with total of 4-6 cycles."
    ).cycles
    assert (cycle.length, cycle.days, cycle.count, cycle.count_max) == (Quantity(21, "d"), ((1, 1),), 4, 6)
    assert cycle.to_fhir() == {"repeat": {"count": 4, "countMax": 6, "period": 21, "periodUnit": "d"}}


def test_days_of_each_cycle_are_not_study_days() -> None:
    # NCT04267848 (fixture): cycle days are relative to each cycle, not to the study start
    timing = extract_timing(
        "DOUBLET III: Patients receive cisplatin IV on day 1 of each cycle and gemcitabine hydrochloride IV on "
        "days 1 and 8 of each cycle."
    )
    assert timing.timepoints == ()


# --- washouts ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sentence", "low", "high", "at_least"),
    [
        ("There is a washout period of 7-10 days between treatments.", Quantity(7, "d"), Quantity(10, "d"), False),
        ("tadalafil given the first 12 weeks and after a 4 week washout sildenafil is given for 12 weeks.",
         Quantity(4, "wk"), None, False),  # NCT00547092
        ("There will be a washout period of at least 7 days between doses of study drug.", Quantity(7, "d"), None,
         True),  # NCT01401543
        ("Washout period 2 weeks", Quantity(2, "wk"), None, False),  # NCT00498680
    ],
)  # fmt: skip
def test_washouts(sentence: str, low: Quantity, high: Quantity | None, at_least: bool) -> None:
    timing = extract_timing(sentence)
    (washout,) = timing.washouts
    assert (washout.low, washout.high, washout.at_least) == (low, high, at_least)


def test_washout_fhir_shapes() -> None:
    (exact,) = extract_timing("Washout period 2 weeks").washouts
    assert exact.to_fhir() == {
        "repeat": {"boundsDuration": {"value": 2, "unit": "weeks", "system": UCUM, "code": "wk"}}
    }
    (ranged,) = extract_timing("There is a washout period of 7-10 days between treatments.").washouts
    assert ranged.to_fhir()["repeat"]["boundsRange"]["high"]["value"] == 10
    (minimum,) = extract_timing("a washout period of at least 7 days").washouts
    assert minimum.to_fhir() == {"repeat": {"boundsRange": {"low": {"value": 7, "unit": "days", "system": UCUM,
                                                                     "code": "d"}}}}  # fmt: skip


# --- negatives: text that must yield nothing (or nothing structured) -----------------------------


@pytest.mark.parametrize(
    "sentence",
    [
        None,
        "",
        "Single dose of 1-2 x 1000000 cells/Kg body weight",  # NCT01854957 intervention
        # ages, not study times
        "Participants who receive vaccination at 6 and 12 months of age",  # NCT00000815
        # relative to the end of treatment, not to the start
        "Follow up will occur at 1 month, 3 months, and 6 months following the end of treatment.",  # NCT04434352
        # alternatives and limits
        "The drug should not be taken more than one time a day or 3 times a week",  # NCT02798159
        "Open-label adalimumab every other week or every week by subcutaneous injection",  # NCT00055497
        "CBT will include 12 to 16 counseling sessions, occurring weekly or every other week",  # NCT00494650
        "assessed at week 4 or week 8",
        # NCT04267848 (fixture): two alternative schedules
        "Treatment repeats every 21 days for 13 cycles or every 6 weeks for 12 cycles (patients enrolled after "
        "10/14/2020) in the absence of disease progression or unacceptable toxicity.",
        # a limit, not a point at which something is done
        "Patients who have significant clinical improvement prior to day 10 and are going to be discharged from "
        "the hospital may discontinue the treatment early with investigator permission.",  # NCT04372602
        # "Day-1"/"Day-16": unclear whether a minus sign
        "On Day-1, Group-A participants first received Voriconazole.",  # NCT05380245
        # cycle-specific days ("of cycles 3, 4, ...") are not "each cycle"
        "Consolidation cycle: 20 mg/m2 by vein over 1 to 2 hours on days 1-5 of cycles 3, 4, 7, 8",  # NCT01515527
        "Subjects will use the application daily for 4 weeks, each daily session takes up to 30 minutes.",
    ],
)
def test_nothing_extracted(sentence: str | None) -> None:
    assert not extract_timing(sentence)


def test_optional_crossovers_have_no_start() -> None:
    for sentence in (
        "Patients in the control group can crossover to the treatment group after 3-month follow-up",  # NCT05287867
        "After 6 months, patients in the control arm will be able to cross over to using the intervention.",
        "Crossover to the alternate treatment allowed after 3 months",  # NCT00415220
        "Nasal Gel used for 90 days then crossed over to placebo gel",  # NCT05484167: "for", not a start
    ):
        timing = extract_timing(sentence)
        assert timing.crossovers, sentence
        assert all(c.at is None for c in timing.crossovers), sentence
        assert timing.period_starts() == []


def test_range_ends_are_not_timepoints() -> None:
    # NCT02210780: "from Week 1 to Week 15" is a span; "Day 1" is a point
    timing = extract_timing(
        "Two subcutaneous injections of Dupilumab 300 mg (for a total of 600 mg) as a loading dose on Day 1, "
        "followed by a single 300 mg injection qw from Week 1 to Week 15."
    )
    assert [p.label for p in timing.timepoints] == ["day 1"]
    # NCT00006487: approximate weeks are not timepoints
    timing = extract_timing("During consolidation: 60 mg/m2, IV on Day 1 only at approximately Week 11, Week 14.")
    assert [p.label for p in timing.timepoints] == ["day 1"]


def test_lone_study_day_has_no_anchor() -> None:
    timing = extract_timing(
        "Oxaliplatin starting dose level 25 mg/m^2 given intraperitoneally on day 2."
    )  # NCT00491855
    assert [p.label for p in timing.timepoints] == ["day 2"]
    assert timing.ordinal_chains() == {}


def test_ordinal_crossover_needs_an_earlier_anchor() -> None:
    timing = extract_timing("At week 12 treatments will be reversed.")
    assert timing.crossovers and timing.crossovers[0].at is not None
    assert timing.period_starts() == []  # week 12 relative to what? no week 0 is stated


def test_frequency_qualifiers() -> None:
    assert extract_timing("Duvelisib 25 mg twice daily for up to 10 days.").repeats[0].bounds is None  # NCT04372602
    # NCT00493636: "approximately every 12 hours" is not a schedule; "twice daily" is
    (repeat,) = extract_timing("2 tablets x 200 mg) orally twice daily (approximately every 12 hours)").repeats
    assert (repeat.frequency, repeat.period_unit) == (2, "d")
    # NCT01515527: "for up to 2, 28 day cycles" states no count
    (cycle,) = extract_timing(
        "Induction cycle: 20 mg subcutaneously twice daily on days 1-10 for up to 2, 28 day cycles."
    ).cycles
    assert cycle.count is None


def test_same_statement_twice_counts_once() -> None:
    timing = extract_timing("Washout period 2 weeks. Washout period 2 weeks.")
    assert len(timing.washouts) == 1


def test_unit_codes() -> None:
    assert [unit_code(w) for w in ("minutes", "hrs", "Days", "wks", "months", "years")] == [
        "min", "h", "d", "wk", "mo", "a"
    ]  # fmt: skip
    with pytest.raises(ValueError):
        unit_code("fortnight")


# --- keyword prefilters: they must never change a result ----------------------------------------


def _words(words: tuple[str, ...]) -> Callable[[str | None], bool]:
    assert all(word.isascii() and word.isalpha() and word.islower() for word in words)
    return lambda folded: timing._mentions(folded, words)


def _times_word(folded: str | None) -> bool:
    return folded is None or timing._mentions(folded, timing._TIMES_WORDS) or timing._TIMES_X(folded) is not None


# Each pattern with the test its prefilter makes on the _fold copy; every example matches the pattern.
_PREFILTERED = [
    (timing._ORDINAL, lambda folded: timing._ORDINAL_START(folded) is not None,
     ["Day 1", "WEEKS 2 and 4", "month\t6", "year 2", "day ٣"]),
    (timing._START_ANCHOR, timing._ANCHOR_WORDS,
     [" after randomization", " Following the first dose", " from baseline", " post enrolment", " since inclusion"]),
    (timing._TIMES, _times_word, ["Drug A twice daily", "3 times per week", "five x a month", "ONCE a year",
                                  "thrice hourly", "2X/day", "3 x-daily"]),
    (timing._TIMES, timing._TIMES_UNIT_WORDS, ["twice DAILY", "2 times a WEEK", "once Monthly", "twice hourly",
                                               "once per year"]),
    (timing._DAYS_A_WEEK, ("day",), ["4 days per week", "five DAYS a WEEK"]),
    (timing._DAYS_A_WEEK, ("week",), ["4 days per week"]),
    (timing._Q_INTERVAL, ("q",), ["Q 8 H", "q12h", "q3w"]),
    (timing._EVERY, ("every",), ["every 3 weeks", "EVERY OTHER DAY", "every 30 minutes"]),
    (timing._CYCLE_LENGTH, ("cycle",), ["21-day cycles", "CYCLES OF 28 DAYS"]),
    (timing._WASHOUT_BEFORE, ("wash",), ["a 2-week washout", "7 days WASH OUT"]),
    (timing._WASHOUT_AFTER, ("wash",), ["Wash-out period of 14 days", "WASH OUT 7 days"]),
    (timing._CROSS, timing._CROSSOVER_WORDS, ["cross over", "Crossed-over", "CROSSOVER", "crossing over"]),
    (timing._REVERSAL, timing._CROSSOVER_WORDS,
     ["treatments will be reversed", "the groups are SWITCHED", "interventions swapped", "arms exchanged",
      "order inverted", "sequences interchanged"]),
]  # fmt: skip
# The case-sensitive patterns: their words are looked for in the text as written.
_PREFILTERED_AS_WRITTEN = [
    (timing._ABBREV, timing._ABBREV_WORDS, ["QD", "given QOD", "BID", "TID", "QID", "100 mg b.i.d.", "t.i.d", "q.i.d",
                                            "q.d."]),
    (timing._ABBREV_LOWER, timing._ABBREV_LOWER_WORDS, ["200 mg tid", "2 tablets bid", "1 ml qid"]),
]  # fmt: skip


@pytest.mark.parametrize(("pattern", "prefilter", "examples"), _PREFILTERED)
def test_the_keyword_prefilters_let_every_form_through(
    pattern: re.Pattern[str], prefilter: tuple[str, ...] | Callable[[str | None], bool], examples: list[str]
) -> None:
    passes = _words(prefilter) if isinstance(prefilter, tuple) else prefilter
    for example in examples:
        assert pattern.search(example), f"{example!r} must be an example of the pattern"
        assert passes(timing._fold(example)), example
    assert not passes(timing._fold("Participants receive 10 mg of drug A as an injection, next to the boxes."))


@pytest.mark.parametrize(("pattern", "words", "examples"), _PREFILTERED_AS_WRITTEN)
def test_the_case_sensitive_prefilters_let_every_form_through(pattern: re.Pattern[str], words: tuple[str, ...],
                                                              examples: list[str]) -> None:  # fmt: skip
    assert pattern.flags & re.IGNORECASE == 0
    for example in examples:
        assert pattern.search(example), f"{example!r} must be an example of the pattern"
        assert timing._mentions(example, words), example
    assert not timing._mentions("Participants receive 10 mg of drug A as an injection daily.", words)


def test_folding_is_re_ignorecase_for_ascii_letters() -> None:
    """Where ``re.I`` matches an ASCII letter in a character, ``_fold`` maps it to that letter, or the
    character is one that turns the prefilters off; no other character changes length."""
    every_character = "".join(map(chr, range(0x80, sys.maxunicode + 1)))
    for letter in string.ascii_lowercase:
        for char in re.findall(letter, every_character, re.I):
            assert char.lower() == letter or char in timing._FOLD_UNSAFE, hex(ord(char))
    changing = [char for char in every_character if len(char.lower()) != 1]
    assert set(changing) <= set(timing._FOLD_UNSAFE)
    # the prefilter regexes rely on these staying what they are
    assert all(char.lower() == char for char in re.findall(r"\d", every_character))
    assert all(re.fullmatch(r"\W", char.lower()) for char in re.findall(r"\W", every_character))
    assert timing._fold("Crossover at Week 24") == "crossover at week 24"
    assert timing._fold("µg twice daily ≥ 2 weeks") == "µg twice daily ≥ 2 weeks"
    assert timing._fold("waſhout") is None  # re.I reads "wash"; lower() would not


_PREFILTER_TEXTS = [
    SEED_ARM,
    "Experimental: drug given 2 x daily on Day 1 and DAY 8 (next: 3X/week), then 1 x a day from week 4 to week 8.",
    "Participants received rituximab 1000 milligrams (mg), intravenously (IV), on Day 1 and Day 15.",
    "At 6 months treatments will be reversed. The patient crosses over at 90 days.",
    "Assessed at 4 and 8 weeks after randomization; crossover after 8 weeks of treatment.",
    "Sunitinib will be given PO once daily on days 1-14 of each 21 day cycle, for a total of 4-6 cycles.",
    "20ug/dose, BID for 7 days. Acamprosate 1998 mg tid. Q3W for 4 cycles, then every other week.",
    "Radiotherapy 5 days a week for 5.6 weeks.\n\n- Peptide T 3 times a day for 6 months",
    "There will be a WASHOUT period of at least 7 days between doses; a 4 week washout, then sildenafil.",
    "Patients in the control group can crossover to the treatment group after 3-month follow-up",
    "9 µg/kg by vein Days 1-5 of a 21 day cycle. Twice daily ≥ 2 weeks; crossover at week 24 after week 0.",
]


@pytest.mark.parametrize("text", _PREFILTER_TEXTS)
def test_the_prefilters_do_not_change_results(text: str) -> None:
    """The pair: with the prefilters, and with every pattern run on every sentence."""
    assert timing._extract(text, None) == extract_timing(text)
    assert extract_timing(text)
    assert timing.may_state_crossover(text) or not timing._extract(text, None).crossovers


def test_may_state_crossover() -> None:
    assert timing.may_state_crossover(SEED_ARM)
    assert timing.may_state_crossover("At 6 months treatments will be REVERSED.")
    assert not timing.may_state_crossover("Drug A twice daily for 12 weeks, then a 2-week washout.")
    assert not timing.may_state_crossover(None)

"""Protocol PlanDefinition (R5): the seed crossover fact by fact, parallel and factorial trials,
unmatched registry links, timing actions, code tables, and structural checks over all fixtures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapter.readers.ctgov_json import read_study
from adapter.readers.ctgov_xml import read_clinical_study
from adapter.record import Arm, Design, Identifier, Intervention, Org, SourceInfo, TrialRecord
from mappings import ids
from mappings import plan_definition as pd
from mappings.codes import table
from mappings.fhir import CTGOV_ENUM, UCUM

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "fixtures"
CORPUS = REPO.parent / "shared" / "corpus"


def _seed() -> TrialRecord:
    return read_clinical_study((FIXTURES / "seed" / "NCT01854957.xml").read_bytes())


def _json_fixture(nct: str) -> TrialRecord:
    return read_study(json.loads((FIXTURES / "ctgov-v2-json" / f"{nct}.json").read_text(encoding="utf-8")))


def _record(**fields: Any) -> TrialRecord:
    return TrialRecord(source=SourceInfo(registry="ctgov", format="ctgov-v2-json"), registry_id="NCT99999999", **fields)


def _walk(actions: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for action in actions:
        yield action
        yield from _walk(action.get("action", []))


def _by_id(resource: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["id"]: a for a in _walk(resource.get("action", []))}


def _codes(concept: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["system"], c["code"]) for c in concept.get("coding", [])]


def _week_offset(value: int) -> dict[str, Any]:
    return {"value": value, "unit": "weeks", "system": UCUM, "code": "wk"}


# --- the seed: NCT01854957, a two-arm crossover ---------------------------------------------------


def test_seed_resource_header() -> None:
    record = _seed()
    resource = pd.to_fhir_plan_definition(record)
    assert resource["resourceType"] == "PlanDefinition"
    assert resource["id"] == ids.plan_definition_id(record) == "nct01854957-protocol"
    assert resource["status"] == "active"
    assert resource["type"]["coding"] == [
        {"system": pd.PLAN_DEFINITION_TYPE, "code": "clinical-protocol", "display": "Clinical Protocol"}
    ]
    assert resource["title"] == "MEsenchymal StEm Cells for Multiple Sclerosis"
    assert [i["value"] for i in resource["identifier"]] == ["MESEMS"]
    assert "2 arms, 1 intervention" in resource["description"]


def test_seed_one_action_per_arm_keyed_like_the_research_study() -> None:
    record = _seed()
    resource = pd.to_fhir_plan_definition(record)
    arm1, arm2 = resource["action"]  # no "interventions not linked" group: MSC is linked to arm 1
    assert [arm1["id"], arm2["id"]] == ids.arm_keys(record)
    assert [arm1["linkId"], arm2["linkId"]] == ids.arm_keys(record)
    assert arm1["title"] == "Autologous Mesenchymal Stem Cells"
    assert arm2["title"] == "Suspension media"
    assert arm1["description"].startswith("At week 0 a single infusion")
    assert _codes(arm1["code"]) == [(CTGOV_ENUM + "ArmGroupType", "EXPERIMENTAL"), (pd.ARM_TYPE_SYSTEM, "experimental")]
    assert _codes(arm2["code"]) == [
        (CTGOV_ENUM + "ArmGroupType", "PLACEBO_COMPARATOR"),
        (pd.ARM_TYPE_SYSTEM, "placebo-comparator"),
    ]


def test_seed_each_arm_has_period_1_at_week_0_and_period_2_24_weeks_later() -> None:
    resource = pd.to_fhir_plan_definition(_seed())
    for arm in resource["action"]:
        period1, period2 = arm["action"]  # nothing else: all the arm's timing is the two periods
        assert period1["id"] == f"{arm['id']}.period-1"
        assert period1["title"] == "Period 1 (week 0)"
        assert "relatedAction" not in period1  # the anchor
        assert period2["id"] == f"{arm['id']}.period-2"
        assert period2["title"] == "Period 2 (week 24)"
        assert period2["relatedAction"] == [
            {"targetId": period1["id"], "relationship": "after-start", "offsetDuration": _week_offset(24)}
        ]
        assert "treatments will be reversed" in period2["textEquivalent"]


def test_seed_treatments_are_reversed_in_period_2() -> None:
    record = _seed()
    resource = pd.to_fhir_plan_definition(record)
    (msc_key,) = ids.intervention_keys(record)
    arm1_key, arm2_key = ids.arm_keys(record)
    arm1, arm2 = resource["action"]
    # arm 1: MSC (the registered intervention, linked by its key), then the comparator's suspension media
    (p1,) = arm1["action"][0]["action"]
    (p2,) = arm1["action"][1]["action"]
    assert p1["id"] == f"{arm1_key}.period-1.{msc_key}"
    assert p1["title"] == "Autologous Mesenchymal Stem Cells"
    assert _codes(p1["code"]) == [(CTGOV_ENUM + "InterventionType", "BIOLOGICAL")]
    assert p1["description"] == "Single dose of 1-2 x 1000000 cells/Kg body weight"
    assert p2["id"] == f"{arm1_key}.period-2.{arm2_key}"
    assert p2["title"] == "Suspension media"
    # the placebo is not a registered intervention: no intervention key, no intervention type
    assert "code" not in p2
    assert "no intervention" in p2["textEquivalent"]
    # arm 2: the opposite order
    (q1,) = arm2["action"][0]["action"]
    (q2,) = arm2["action"][1]["action"]
    assert q1["id"] == f"{arm2_key}.period-1.{arm2_key}"
    assert q1["title"] == "Suspension media"
    assert q2["id"] == f"{arm2_key}.period-2.{msc_key}"
    assert q2["title"] == "Autologous Mesenchymal Stem Cells"


def test_seed_intervention_appears_once_per_arm_and_only_inside_periods() -> None:
    record = _seed()
    (msc_key,) = ids.intervention_keys(record)
    actions = _by_id(pd.to_fhir_plan_definition(record))
    holders = sorted(i for i in actions if i.endswith("." + msc_key))
    assert [h.split(".")[1] for h in holders] == ["period-1", "period-2"]
    assert len({h.split(".")[0] for h in holders}) == 2


def test_seed_json_copy_gives_the_same_plan() -> None:
    seed_json = FIXTURES / "seed" / "NCT01854957.json"
    if not seed_json.exists():
        pytest.skip("no JSON copy of the seed")
    from_json = pd.to_fhir_plan_definition(read_study(json.loads(seed_json.read_text(encoding="utf-8"))))
    from_xml = pd.to_fhir_plan_definition(_seed())
    assert from_json["action"] == from_xml["action"]


# --- parallel and factorial trials ---------------------------------------------------------------


def test_parallel_trial_links_both_directions_and_emits_no_timing() -> None:
    record = _json_fixture("NCT00000410")  # PARALLEL: surgery vs non-surgical treatment
    resource = pd.to_fhir_plan_definition(record)
    surgery, nonsurgical = resource["action"]
    diskectomy, non_surgical = ids.intervention_keys(record)
    assert [a["id"] for a in surgery["action"]] == [f"{surgery['id']}.{diskectomy}", f"{surgery['id']}.{non_surgical}"]
    assert [a["id"] for a in nonsurgical["action"]] == [f"{nonsurgical['id']}.{non_surgical}"]
    assert [a["title"] for a in surgery["action"]] == ["Diskectomy", "Non-surgical treatments"]
    text = json.dumps(resource)
    assert "relatedAction" not in text and "timingTiming" not in text  # the record states no timing


FACTORIAL_ARMS = {  # NCT05160233 (2x2 factorial, corpus): arm -> interventions
    "Standard Implementation": ["Standard implementation"],
    "Standard Implementation Plus Health Coaching": ["Standard implementation", "Health Coaching"],
    "Standard Implementation Plus Practice Facilitation": ["Standard implementation", "Practice Facilitation"],
    "Standard Implementation Plus Health Coaching and Practice Facilitation": [
        "Standard implementation",
        "Health Coaching",
        "Practice Facilitation",
    ],
}


def _factorial() -> TrialRecord:
    names = ["Standard implementation", "Health Coaching", "Practice Facilitation"]
    return _record(
        design=Design(intervention_model="FACTORIAL", allocation="RANDOMIZED"),
        arms=[
            Arm(label=label, type="EXPERIMENTAL", intervention_names=[f"Behavioral: {n}" for n in given])
            for label, given in FACTORIAL_ARMS.items()
        ],
        interventions=[
            Intervention(
                type="BEHAVIORAL",
                name=name,
                arm_group_labels=[label for label, given in FACTORIAL_ARMS.items() if name in given],
            )
            for name in names
        ],
    )


def test_factorial_trial_gives_each_arm_its_combination() -> None:
    record = _factorial()
    resource = pd.to_fhir_plan_definition(record)
    assert len(resource["action"]) == 4
    for arm, (label, given) in zip(resource["action"], FACTORIAL_ARMS.items(), strict=True):
        assert arm["title"] == label
        assert [a["title"] for a in arm["action"]] == given
    assert pd.resolve_links(record).unresolved == 0


def test_factorial_corpus_record_matches_the_hand_built_one() -> None:
    path = CORPUS / "ctgov-v2-json" / "NCT05160233.json"
    if not path.exists():
        pytest.skip("corpus not available")
    resource = pd.to_fhir_plan_definition(read_study(json.loads(path.read_text(encoding="utf-8"))))
    assert {a["title"]: [s["title"] for s in a["action"]] for a in resource["action"]} == FACTORIAL_ARMS


# --- links that match nothing ------------------------------------------------------------------


def _unmatched() -> TrialRecord:
    return _record(
        arms=[
            Arm(label="Arm A", type="EXPERIMENTAL", intervention_names=["Drug: Alpha"]),
            Arm(label="Arm B", type="PLACEBO_COMPARATOR", intervention_names=["Drug: Ghost"]),
        ],
        interventions=[
            Intervention(type="DRUG", name="Alpha", arm_group_labels=["Arm A", "Arm Z"]),
            Intervention(type="DRUG", name="Orphan", description="Given to whom?"),
        ],
    )


def test_unmatched_links_are_kept_and_counted() -> None:
    record = _unmatched()
    links = pd.resolve_links(record)
    assert links.arm_interventions == ((0,), ())
    assert links.unmatched_names == ((), ("Drug: Ghost",))
    assert links.unmatched_labels == (("Arm Z",), ())
    assert links.unresolved == 2
    resource = pd.to_fhir_plan_definition(record)
    arm_a, arm_b, unlinked = resource["action"]
    alpha, orphan = ids.intervention_keys(record)
    # arm B's unmatched "Drug: Ghost" stays with arm B, as text
    (ghost,) = arm_b["action"]
    assert ghost["id"] == f"{arm_b['id']}.unmatched-1"
    assert ghost["title"] == "Drug: Ghost"
    assert "no registered intervention" in ghost["textEquivalent"]
    # Alpha is given in arm A, and its link to the unknown "Arm Z" is kept in the unlinked group
    assert [a["id"] for a in arm_a["action"]] == [f"{arm_a['id']}.{alpha}"]
    assert unlinked["id"] == pd.UNASSIGNED_ACTION_ID
    assert [a["id"] for a in unlinked["action"]] == [
        f"{pd.UNASSIGNED_ACTION_ID}.{alpha}",
        f"{pd.UNASSIGNED_ACTION_ID}.{orphan}",
    ]
    assert "'Arm Z'" in unlinked["action"][0]["textEquivalent"]
    assert unlinked["action"][1]["description"] == "Given to whom?"
    assert "2 arm/intervention links" in resource["description"]


def test_matching_ignores_case_whitespace_and_punctuation() -> None:
    record = _record(
        arms=[Arm(label="Arm  A.", intervention_names=["drug: sildenafil   CITRATE"]), Arm(label="B")],
        interventions=[
            Intervention(type="DRUG", name="Sildenafil citrate", arm_group_labels=[]),
            Intervention(type="DRUG", name="Tadalafil", arm_group_labels=["b"]),
        ],
    )
    links = pd.resolve_links(record)
    assert links.arm_interventions == ((0,), (1,))
    assert links.unresolved == 0


def test_duplicate_names_are_resolved_by_the_other_direction() -> None:
    # NCT00547183: two interventions named "tadalafil", each linked to one arm by label
    record = _record(
        arms=[
            Arm(label="2", intervention_names=["Drug: tadalafil"]),
            Arm(label="3", intervention_names=["Drug: tadalafil"]),
        ],
        interventions=[
            Intervention(type="DRUG", name="tadalafil", arm_group_labels=["2"]),
            Intervention(type="DRUG", name="tadalafil", arm_group_labels=["3"]),
        ],
    )
    links = pd.resolve_links(record)
    assert links.arm_interventions == ((0,), (1,))
    assert links.unresolved == 0
    # without the other direction the name is ambiguous: kept as text, not guessed
    ambiguous = record.model_copy(
        update={"interventions": [i.model_copy(update={"arm_group_labels": []}) for i in record.interventions]}
    )
    assert pd.resolve_links(ambiguous).unmatched_names == (("Drug: tadalafil",), ("Drug: tadalafil",))


def test_names_equal_after_normalisation_are_told_apart_by_exact_text() -> None:
    record = _json_fixture("NCT00498680")  # "Sildenafil, Vardenafil" and "Sildenafil & Vardenafil"
    links = pd.resolve_links(record)
    assert links.unresolved == 0
    combined = next(a for a, arm in enumerate(record.arms) if arm.label == "Viagra 50mg+ Levitra 10mg")
    names = {record.interventions[i].name for i in links.arm_interventions[combined]}
    assert names == {"Sildenafil, Vardenafil", "Sildenafil & Vardenafil"}


# --- timing on actions ---------------------------------------------------------------------------


def test_crossover_stated_in_the_model_description_applies_to_every_arm() -> None:
    record = _record(
        design=Design(
            intervention_model="CROSSOVER", intervention_model_description="The patient crosses over at 90 days"
        ),
        arms=[Arm(label="Natesto", type="ACTIVE_COMPARATOR"), Arm(label="Placebo", type="PLACEBO_COMPARATOR")],
        interventions=[
            Intervention(type="DRUG", name="Natesto Nasal Product", arm_group_labels=["Natesto"]),
            Intervention(type="DRUG", name="Placebo", arm_group_labels=["Placebo"]),
        ],
    )  # NCT05484167
    resource = pd.to_fhir_plan_definition(record)
    natesto, placebo = ids.intervention_keys(record)
    for arm, first, second in zip(resource["action"], (natesto, placebo), (placebo, natesto), strict=True):
        period1, period2 = arm["action"]
        assert period2["relatedAction"] == [
            {
                "targetId": period1["id"],
                "relationship": "after-start",
                "offsetDuration": {"value": 90, "unit": "days", "system": UCUM, "code": "d"},
            }
        ]
        assert [a["id"].rsplit(".", 1)[1] for a in period1["action"]] == [first]
        assert [a["id"].rsplit(".", 1)[1] for a in period2["action"]] == [second]


def test_study_level_crossover_is_ignored_outside_crossover_designs_or_for_a_subset() -> None:
    arms = [Arm(label="A"), Arm(label="B")]
    parallel = _record(
        design=Design(
            intervention_model="PARALLEL", intervention_model_description="The patient crosses over at 90 days"
        ),
        arms=arms,
    )
    subset = _record(
        design=Design(
            intervention_model="CROSSOVER",
            intervention_model_description="Patients in the placebo group cross over at 90 days.",
        ),
        arms=arms,
    )
    for record in (parallel, subset):
        assert ".period-" not in json.dumps(pd.to_fhir_plan_definition(record))


def test_crossover_of_another_arm_copied_into_this_arm_is_not_this_arms_period() -> None:
    # NCT02107118: only the placebo arm's description says it crosses over (after one year)
    sentence = (
        "For those subjects in the placebo arm, the stem cells will be frozen for later use after one year when "
        "the patients cross over into the treatment arm."
    )
    record = _record(
        design=Design(intervention_model="CROSSOVER"),
        arms=[
            Arm(label="ARM 1: AdMSC", type="ACTIVE_COMPARATOR", description=sentence),
            Arm(label="ARM 2 Placebo", type="PLACEBO_COMPARATOR", description=sentence),
        ],
        interventions=[
            Intervention(type="BIOLOGICAL", name="AdMSC", arm_group_labels=["ARM 1: AdMSC"]),
            Intervention(type="OTHER", name="Placebo", arm_group_labels=["ARM 2 Placebo"]),
        ],
    )
    active, placebo = pd.to_fhir_plan_definition(record)["action"]
    assert ".period-" not in json.dumps(active)
    period1, period2 = placebo["action"]
    assert period2["relatedAction"][0]["offsetDuration"] == {"value": 1, "unit": "year", "system": UCUM, "code": "a"}
    assert [a["title"] for a in period1["action"]] == ["Placebo"]
    assert [a["title"] for a in period2["action"]] == ["AdMSC"]


def test_periods_without_reversal_keep_the_treatments_on_the_arm() -> None:
    # three arms: which treatment follows which is not stated, so periods carry no treatments
    record = _record(
        arms=[
            Arm(label=label, description="At week 0 patients start. At week 12 treatments will be reversed.")
            for label in ("A", "B", "C")
        ],
        interventions=[Intervention(type="DRUG", name=n, arm_group_labels=[n]) for n in ("A", "B", "C")],
    )
    resource = pd.to_fhir_plan_definition(record)
    for arm in resource["action"]:
        period1, period2, given = arm["action"]
        assert "action" not in period1 and "action" not in period2
        assert period2["relatedAction"][0]["offsetDuration"] == _week_offset(12)
        assert given["title"] == arm["title"]


def test_ordinal_timepoints_relate_to_the_earliest() -> None:
    record = _record(
        arms=[Arm(label="Rituximab", description="Participants received rituximab 1000 mg IV on Day 1 and Day 15.")]
    )  # NCT00462345
    actions = _by_id(pd.to_fhir_plan_definition(record))
    key = ids.arm_keys(record)[0]
    assert actions[f"{key}.day-1"]["title"] == "Day 1"
    assert "relatedAction" not in actions[f"{key}.day-1"]
    assert actions[f"{key}.day-15"]["relatedAction"] == [
        {
            "targetId": f"{key}.day-1",
            "relationship": "after-start",
            "offsetDuration": {"value": 14, "unit": "days", "system": UCUM, "code": "d"},
        }
    ]


def test_cycle_days_relate_to_their_cycle() -> None:
    record = _record(
        arms=[Arm(label="Sunitinib")],
        interventions=[
            Intervention(
                type="DRUG",
                name="Sunitinib",
                description="Sunitinib will be given PO once daily on days 1-14 of each 21 day cycle.",
                arm_group_labels=["Sunitinib"],
            )
        ],
    )  # NCT00496223
    arm_key = ids.arm_keys(record)[0]
    intervention = f"{arm_key}.{ids.intervention_keys(record)[0]}"
    actions = _by_id(pd.to_fhir_plan_definition(record))
    cycle = actions[f"{intervention}.cycle-1"]
    assert cycle["timingTiming"] == {"repeat": {"period": 21, "periodUnit": "d"}}
    days = actions[f"{intervention}.cycle-1.days-1-14"]
    assert days["relatedAction"][0]["targetId"] == cycle["id"]
    assert days["relatedAction"][0]["offsetDuration"]["value"] == 0
    assert days["timingTiming"]["repeat"]["boundsDuration"]["value"] == 14
    assert actions[f"{intervention}.schedule-1"]["timingTiming"]["repeat"]["frequency"] == 1


def test_a_single_schedule_is_the_intervention_timing() -> None:
    record = _record(
        arms=[Arm(label="Metformin")],
        interventions=[
            Intervention(
                type="DRUG",
                name="Metformin",
                description="Metformin 850 mg tablets twice daily for 52 weeks",
                arm_group_labels=["Metformin"],
            )
        ],
    )  # NCT02514629
    (arm,) = pd.to_fhir_plan_definition(record)["action"]
    (given,) = arm["action"]
    assert given["timingTiming"]["repeat"]["frequency"] == 2
    assert given["timingTiming"]["repeat"]["boundsDuration"] == _week_offset(52)
    assert "action" not in given


# --- code tables ---------------------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(table("intervention_type")))
def test_intervention_type_rows(code: str) -> None:
    display = table("intervention_type")[code]["display"]
    assert pd.intervention_type_concept(code) == {
        "coding": [{"system": CTGOV_ENUM + "InterventionType", "code": code, "display": display}],
        "text": display,
    }
    assert pd.intervention_type_concept(display) == pd.intervention_type_concept(code)  # legacy XML spelling


@pytest.mark.parametrize("code", sorted(table("arm_type")))
def test_arm_type_rows(code: str) -> None:
    row = table("arm_type")[code]
    assert pd.arm_type_concept(code) == {
        "coding": [
            {"system": CTGOV_ENUM + "ArmGroupType", "code": code, "display": row["display"]},
            {"system": pd.ARM_TYPE_SYSTEM, "code": row["code"], "display": row["display"]},
        ],
        "text": row["display"],
    }


def test_unknown_types_are_kept_as_text() -> None:
    assert pd.intervention_type_concept("GENE_EDITING") == {"text": "GENE_EDITING"}
    assert pd.arm_type_concept("CASE_ONLY") == {"text": "CASE_ONLY"}
    assert pd.intervention_type_concept(None) == {}


def test_intervention_type_table_covers_the_ctgov_enum() -> None:
    spec = CORPUS / "schemas" / "ctg-oas-v2_2.0.5.yaml"
    if not spec.exists():
        pytest.skip("corpus schemas not available")
    lines = spec.read_text(encoding="utf-8").splitlines()
    start = lines.index("    InterventionType:")
    values = []
    for line in lines[start + 3 :]:
        if not line.startswith("      - "):
            break
        values.append(line.strip()[2:].strip('"'))
    assert sorted(values) == sorted(table("intervention_type"))


# --- every fixture -------------------------------------------------------------------------------


def _fixture_records() -> list[tuple[str, TrialRecord]]:
    out = [(p.name, _json_fixture(p.stem)) for p in sorted((FIXTURES / "ctgov-v2-json").glob("*.json"))]
    out += [(p.name, read_clinical_study(p.read_bytes())) for p in sorted((FIXTURES / "ctgov-xml").glob("*.xml"))]
    out.append(("seed", _seed()))
    return [(name, record) for name, record in out if ids.has_protocol(record)]


@pytest.mark.parametrize(("name", "record"), _fixture_records(), ids=lambda v: v if isinstance(v, str) else "")
def test_fixture_structure(name: str, record: TrialRecord) -> None:
    resource = pd.to_fhir_plan_definition(record)
    assert resource == pd.to_fhir_plan_definition(record)  # deterministic
    actions = list(_walk(resource["action"]))
    action_ids = [a["id"] for a in actions]
    assert len(action_ids) == len(set(action_ids)), "action ids must be unique"
    assert [a["id"] for a in resource["action"][: len(record.arms)]] == ids.arm_keys(record)
    for action in actions:
        for related in action.get("relatedAction", []):
            assert related["targetId"] in action_ids  # pld-4
            assert len(related["targetId"]) <= 64
    # every intervention lands in some arm or in the unlinked group
    keys = {a["id"].rsplit(".", 1)[-1] for a in actions}
    assert set(ids.intervention_keys(record)) <= keys


def test_every_arm_and_intervention_field_lands_in_the_plan() -> None:
    record = _record(
        org_study_id=Identifier(id="ORG-ID-TEXT"),
        organization=Org(name="Organization name text"),
        brief_title="Brief title text",
        arms=[
            Arm(
                label="Arm label text",
                type="EXPERIMENTAL",
                description="Arm description text",
                intervention_names=["Drug: Intervention name text", "Drug: Unmatched name text"],
            )
        ],
        interventions=[
            Intervention(
                type="DRUG",
                name="Intervention name text",
                description="Intervention description text",
                arm_group_labels=["Arm label text", "Unmatched arm label text"],
                other_names=["Other name text"],
            )
        ],
    )
    text = json.dumps(pd.to_fhir_plan_definition(record))
    for value in (
        "ORG-ID-TEXT",
        "Organization name text",
        "Brief title text",
        "Arm label text",
        '"EXPERIMENTAL"',
        "Arm description text",
        "Unmatched name text",
        '"DRUG"',
        "Intervention name text",
        "Intervention description text",
        "Unmatched arm label text",
        "Other name text",
    ):
        assert value in text, value

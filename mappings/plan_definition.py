"""Arms, interventions and their timing -> the protocol ``PlanDefinition`` (R5 shape).

One top-level action per arm (``id`` = the arm key that ResearchStudy uses as
``comparisonGroup.linkId``), holding one sub-action per intervention given in that arm
(``id`` = ``<arm key>.<intervention key>``).  The arm <-> intervention links are the union of
both directions CT.gov records (``Intervention.arm_group_labels`` and ``Arm.intervention_names``),
matched ignoring case, whitespace and punctuation.  A link that matches nothing is kept, never
dropped: an arm's unmatched intervention name becomes a text-only sub-action of that arm, and an
intervention linked to no registered arm goes to a separate top-level action.

Timing is structured only where ``mappings.timing`` finds an unambiguous statement, following the
Vulcan Schedule of Activities pattern: an anchor action and others related to it with
``relatedAction`` (``after-start`` + ``offsetDuration``), and ``timingTiming`` for repeats.  A
crossover whose switch time is stated becomes periods (period 1 = anchor, period 2 ``after-start``
period 1); in a two-arm crossover whose arms have different treatments, each arm's periods carry
the treatments in registry order then reversed.  Everything not structured stays in the
descriptions, which are always kept verbatim.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from adapter.record import Arm, TrialRecord
from mappings import ids
from mappings.codes import table
from mappings.fhir import coding, compact, concept, ctgov_coding
from mappings.timing import ExtractedTiming, Quantity, Timepoint, extract_timing, may_state_crossover

PLAN_DEFINITION_TYPE = "http://terminology.hl7.org/CodeSystem/plan-definition-type"
ARM_TYPE_SYSTEM = "http://hl7.org/fhir/research-study-arm-type"
UNASSIGNED_ACTION_ID = "interventions-not-linked"
"""Id of the top-level action holding interventions that no registered arm receives."""

_SCALE_WORD = {"min": "minute", "h": "hour", "d": "day", "wk": "week", "mo": "month", "a": "year"}


# --- arm <-> intervention links -----------------------------------------------------------------


_NOT_WORD = re.compile(r"[\W_]+")


def normalize_label(text: str) -> str:
    """Case-, whitespace- and punctuation-insensitive form of an arm label or intervention name."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_NOT_WORD.sub(" ", text).split())


_TYPE_SEPARATORS = re.compile(r"[\s\-/]+")


# Called for every intervention, arm and "Type: Name" link, on values of a small vocabulary.
@lru_cache(maxsize=1024)
def _type_code(value: str | None) -> str | None:
    """``Dietary Supplement`` / ``dietary-supplement`` / ``DIETARY_SUPPLEMENT`` -> ``DIETARY_SUPPLEMENT``."""
    if not value:
        return None
    return _TYPE_SEPARATORS.sub("_", value.strip()).upper()


@dataclass(frozen=True)
class ArmInterventionLinks:
    """Which interventions each arm receives, and the registry links that match nothing."""

    arm_interventions: tuple[tuple[int, ...], ...]
    """Per arm (``record.arms`` order): indexes into ``record.interventions``, in record order."""
    unmatched_names: tuple[tuple[str, ...], ...]
    """Per arm: entries of ``Arm.intervention_names`` that match no registered intervention."""
    unmatched_labels: tuple[tuple[str, ...], ...]
    """Per intervention: entries of ``Intervention.arm_group_labels`` that match no registered arm."""

    @property
    def unresolved(self) -> int:
        """How many registry links match nothing."""
        return sum(map(len, self.unmatched_names)) + sum(map(len, self.unmatched_labels))

    def arms_of(self, intervention: int) -> list[int]:
        return [a for a, interventions in enumerate(self.arm_interventions) if intervention in interventions]


def _unique(candidates: list[int]) -> int | None:
    return candidates[0] if len(candidates) == 1 else None


class _Labels:
    """Arm labels or intervention names as registered, and their ``normalize_label`` keys.

    The keys are computed once per record, and only when a link does not match a label exactly
    (most do), instead of once per label per link compared.
    """

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self._keys: list[str] | None = None

    @property
    def keys(self) -> list[str]:
        if self._keys is None:
            self._keys = [normalize_label(text) for text in self.texts]
        return self._keys


def _match_arm(arms: _Labels, label: str) -> int | None:
    exact = _unique([i for i, text in enumerate(arms.texts) if text == label])
    if exact is not None:
        return exact
    key = normalize_label(label)
    return _unique([i for i, other in enumerate(arms.keys) if other == key]) if key else None


def _intervention_candidates(names: _Labels, types: list[str | None], text: str) -> list[int]:
    """Interventions that ``"Type: Name"`` (CT.gov's form in ``Arm.intervention_names``) may mean.

    ``names`` and ``types`` are the registered interventions' names and ``_type_code`` types.  Most
    specific first: exact type and name, then normalised type and name, then the name alone (the
    registry's two lists sometimes disagree on the type), then the whole text as a name (names that
    themselves contain a colon).  Several candidates remain when names are duplicated.
    """
    prefix, sep, rest = text.partition(":")
    type_code = _type_code(prefix) if sep else None
    if type_code in table("intervention_type"):
        typed = [i for i, other in enumerate(types) if other == type_code]
        name = rest.strip()
        exact = [i for i in typed if names.texts[i] == name]
        if exact:
            return exact
        key = normalize_label(rest)
        same_type = [i for i in typed if names.keys[i] == key]
        if same_type:
            return same_type
        any_type = [i for i, other in enumerate(names.keys) if other == key]
        if any_type:
            return any_type
    whole = normalize_label(text)
    return [i for i, other in enumerate(names.keys) if other == whole]


def resolve_links(record: TrialRecord) -> ArmInterventionLinks:
    """Arm <-> intervention links from both registry directions; unmatched entries are reported, not dropped."""
    per_arm: list[set[int]] = [set() for _ in record.arms]
    arm_labels = _Labels([arm.label for arm in record.arms])
    unmatched_labels: list[tuple[str, ...]] = []
    for index, intervention in enumerate(record.interventions):
        missing = []
        for label in intervention.arm_group_labels:
            arm = _match_arm(arm_labels, label)
            if arm is None:
                missing.append(label)
            else:
                per_arm[arm].add(index)
        unmatched_labels.append(tuple(missing))
    names = _Labels([intervention.name for intervention in record.interventions])
    types = [_type_code(intervention.type) for intervention in record.interventions]
    unmatched_names: list[tuple[str, ...]] = []
    for arm_index, arm in enumerate(record.arms):
        missing = []
        for name in arm.intervention_names:
            candidates = _intervention_candidates(names, types, name)
            if len(candidates) == 1:
                per_arm[arm_index].add(candidates[0])
            elif not any(c in per_arm[arm_index] for c in candidates):
                # no candidate, or duplicated names none of which the other direction links to this
                # arm: which intervention is meant cannot be told, so the entry is kept as text
                missing.append(name)
        unmatched_names.append(tuple(missing))
    return ArmInterventionLinks(
        arm_interventions=tuple(tuple(sorted(s)) for s in per_arm),
        unmatched_names=tuple(unmatched_names),
        unmatched_labels=tuple(unmatched_labels),
    )


# --- codes -----------------------------------------------------------------------------------


def arm_type_concept(value: str | None) -> dict[str, Any]:
    """CT.gov ``ArmGroupType`` coding plus the R5 ``research-study-arm-type`` code (one to one)."""
    if not value:
        return {}
    code = _type_code(value) or ""
    row = table("arm_type").get(code)
    if row is None:
        return concept(text=value)  # a value CT.gov may add later: kept as text, not guessed
    return concept(
        ctgov_coding("ArmGroupType", code, row["display"]),
        coding(ARM_TYPE_SYSTEM, row["code"], row["display"]),
        text=row["display"],
    )


def intervention_type_concept(value: str | None) -> dict[str, Any]:
    """CT.gov ``InterventionType`` coding (FHIR has no code system for intervention types)."""
    if not value:
        return {}
    code = _type_code(value) or ""
    row = table("intervention_type").get(code)
    if row is None:
        return concept(text=value)
    return concept(ctgov_coding("InterventionType", code, row["display"]), text=row["display"])


# --- timing -> actions -------------------------------------------------------------------------


def _point_title(point: Timepoint) -> str:
    return point.label[:1].upper() + point.label[1:]


def _point_id(point: Timepoint) -> str:
    value = str(point.value)
    if point.ordinal:
        return f"{_SCALE_WORD[point.unit]}-{value}"
    return f"at-{value}{point.unit}"


def _related(target: str, offset: Quantity) -> dict[str, Any]:
    return {"targetId": target, "relationship": "after-start", "offsetDuration": offset.to_fhir()}


def _sentences_of(timing: ExtractedTiming, point: Timepoint) -> str:
    """Every sentence of the text that names the timepoint: what happens then is said there."""
    seen: list[str] = []
    for other in timing.timepoints:
        if other.key == point.key and other.sentence not in seen:
            seen.append(other.sentence)
    return "\n\n".join(seen) or point.sentence


def _timing_actions(
    parent: str, timing: ExtractedTiming, taken: dict[tuple[Any, ...], str] | None = None
) -> list[dict[str, Any]]:
    """Child actions for the timing stated in the description of action ``parent``.

    ``taken`` maps timepoints already represented by another action (crossover periods) to that
    action's id, so the remaining points relate to it instead of being emitted twice.
    """
    taken = taken or {}
    actions: list[dict[str, Any]] = []
    for chain in timing.ordinal_chains().values():
        anchor = chain[0]
        anchor_id = taken.get(anchor.key, f"{parent}.{_point_id(anchor)}")
        for point in chain:
            if point.key in taken:
                continue
            own_id = f"{parent}.{_point_id(point)}"
            offset = point.offset_from(anchor)
            actions.append(
                {
                    "id": own_id,
                    "title": _point_title(point),
                    "textEquivalent": _sentences_of(timing, point),
                    "relatedAction": [_related(anchor_id, offset)] if point is not anchor and offset else [],
                }
            )
    for point in timing.elapsed():
        if point.key in taken:
            continue
        actions.append(
            {
                "id": f"{parent}.{_point_id(point)}",
                "title": f"At {point.label}",
                "textEquivalent": _sentences_of(timing, point),
                "relatedAction": [_related(parent, Quantity(point.value, point.unit))],
            }
        )
    for n, repeat in enumerate(timing.repeats, 1):
        actions.append(
            {
                "id": f"{parent}.schedule-{n}",
                "title": repeat.text,
                "textEquivalent": repeat.sentence,
                "timingTiming": repeat.to_fhir(),
            }
        )
    for n, cycle in enumerate(timing.cycles, 1):
        cycle_id = f"{parent}.cycle-{n}"
        days = []
        for first, last in cycle.days:
            day = {
                "id": f"{cycle_id}.day-{first}" if first == last else f"{cycle_id}.days-{first}-{last}",
                "title": f"Day {first} of each cycle" if first == last else f"Days {first}-{last} of each cycle",
                "relatedAction": [_related(cycle_id, Quantity(first - 1, "d"))],
            }
            if last > first:
                # "on days 1-5": on each of those days; how often per day is not stated
                bounds = Quantity(last - first + 1, "d").to_fhir()
                day["timingTiming"] = {"repeat": {"boundsDuration": bounds, "period": 1, "periodUnit": "d"}}
            days.append(day)
        actions.append(
            {
                "id": cycle_id,
                "title": f"{cycle.length.value}-{_SCALE_WORD[cycle.length.unit]} cycle",
                "textEquivalent": cycle.sentence,
                "timingTiming": cycle.to_fhir(),
                "action": days,
            }
        )
    for n, washout in enumerate(timing.washouts, 1):
        actions.append(
            {
                "id": f"{parent}.washout-{n}",
                "title": "Washout",
                "textEquivalent": washout.sentence,
                "timingTiming": washout.to_fhir(),
            }
        )
    return actions


# --- crossover periods -------------------------------------------------------------------------


@dataclass
class _Periods:
    """The periods stated for one arm: where they came from and what they start at."""

    timing: ExtractedTiming
    """The text the periods were read from (the arm's own description or a study-level text)."""
    own: bool
    """Read from the arm's own description (its other timing then relates to the periods)."""
    anchor: Timepoint | None
    """Ordinal start of period 1 ("week 0"); ``None`` when period 1 starts with the arm."""
    starts: list[tuple[Timepoint, Quantity, str]] = field(default_factory=list)
    """Later periods: the stated start, its offset from period 1, and the sentence saying so."""


# In a study-level text, a crossover sentence naming a subset of participants ("patients in the
# placebo arm cross over after one year") says nothing about the other arms.
_SUBSET = re.compile(
    r"\b(?:placebo|control|sham|active|groups?|arms?|cohorts?|those|who|wait-?list|delayed|immediate"
    r"|original(?:ly)?|initial(?:ly)?)\b",
    re.I,
)


_SPECIFIC_SUBSET = {"placebo", "control", "sham", "active", "waitlist", "wait-list", "delayed", "immediate"}


def _applies_to(sentence: str, arm: Arm) -> bool:
    """Whether a crossover sentence in an arm's own description is about that arm.

    CT.gov arm descriptions are often copied across arms, so "patients in the placebo group cross
    over at week 12" may sit in the experimental arm's description too.  The sentence counts when
    it names no subset of participants, or names one that this arm's label or type names as well.
    """
    named = {m.group(0).casefold() for m in _SUBSET.finditer(sentence)}
    if not named:
        return True
    own_words = set(normalize_label(f"{arm.label} {arm.type or ''}").replace("_", " ").split())
    return bool(named & _SPECIFIC_SUBSET & own_words)


def _periods_from(timing: ExtractedTiming, own: bool, shared: bool, arm: Arm | None = None) -> _Periods | None:
    crossovers = timing.period_starts()
    if arm is not None:
        crossovers = [c for c in crossovers if _applies_to(c.sentence, arm)]
    if not crossovers:
        return None
    if shared and (len(crossovers) != 1 or _SUBSET.search(crossovers[0].sentence)):
        return None  # a study-level text must state one switch time that applies to every arm
    points = [c.at for c in crossovers if c.at is not None]
    scale = {(p.ordinal, p.unit) for p in points}
    if len(scale) != 1:
        return None
    ((ordinal, unit),) = scale
    anchor = timing.ordinal_chains()[unit][0] if ordinal else None
    starts = []
    for crossover in sorted(crossovers, key=lambda c: c.at.value if c.at else 0):
        at = crossover.at
        assert at is not None
        offset = at.offset_from(anchor) if anchor is not None else Quantity(at.value, at.unit)
        if offset is None or offset.value <= 0:
            return None
        starts.append((at, offset, crossover.sentence))
    return _Periods(timing=timing, own=own, anchor=anchor, starts=starts)


def _period_title(n: int, point: Timepoint | None) -> str:
    if point is None:
        return f"Period {n}"
    return f"Period {n} ({point.label})" if point.ordinal else f"Period {n} (after {point.label})"


# --- the resource ----------------------------------------------------------------------------


@dataclass
class _Context:
    record: TrialRecord
    links: ArmInterventionLinks
    arm_keys: list[str]
    intervention_keys: list[str]
    arm_timing: list[ExtractedTiming]
    intervention_timing: list[ExtractedTiming]
    shared_periods: _Periods | None
    """Periods a study-level text states for every arm of a crossover design (used where an arm's own
    description states none)."""


def _intervention_action(ctx: _Context, index: int, parent: str, note: str | None = None) -> dict[str, Any]:
    intervention = ctx.record.interventions[index]
    action_id = f"{parent}.{ctx.intervention_keys[index]}"
    kind = intervention_type_concept(intervention.type)
    label = f"{kind.get('text') or intervention.type}: {intervention.name}" if intervention.type else intervention.name
    text = [label + "."]
    if intervention.other_names:
        text.append("Other names: " + "; ".join(intervention.other_names) + ".")
    if note:
        text.append(note)
    action: dict[str, Any] = {
        "id": action_id,
        "title": intervention.name,
        "description": intervention.description,
        "textEquivalent": " ".join(text),
        "code": kind or None,
    }
    timing = ctx.intervention_timing[index]
    only_repeat = len(timing.repeats) == 1 and not (
        timing.ordinal_chains() or timing.elapsed() or timing.cycles or timing.washouts
    )
    if only_repeat:
        # the intervention itself is what repeats: its own timing, no child action needed
        action["timingTiming"] = timing.repeats[0].to_fhir()
    else:
        action["action"] = _timing_actions(action_id, timing)
    return action


def _unmatched_name_action(action_id: str, arm: Arm, name: str) -> dict[str, Any]:
    return {
        "id": action_id,
        "title": name,
        "textEquivalent": (
            f"Listed in the registry as an intervention of arm '{arm.label}' ('{name}'), "
            "but no registered intervention has that name."
        ),
    }


def _arm_treatments(ctx: _Context, arm_index: int, parent: str) -> list[dict[str, Any]]:
    """What an arm receives, as actions under ``parent``: its interventions and unmatched names."""
    arm = ctx.record.arms[arm_index]
    key = ctx.arm_keys[arm_index]
    actions = [_intervention_action(ctx, i, parent) for i in ctx.links.arm_interventions[arm_index]]
    own = parent == key
    for n, name in enumerate(ctx.links.unmatched_names[arm_index], 1):
        action_id = f"{parent}.unmatched-{n}" if own else f"{parent}.{key}-unmatched-{n}"
        actions.append(_unmatched_name_action(action_id, arm, name))
    return actions


def _label_treatment(ctx: _Context, arm_index: int, parent: str) -> dict[str, Any]:
    """An arm's treatment known only by the arm's label (e.g. a placebo not registered as an intervention)."""
    arm = ctx.record.arms[arm_index]
    kind = arm_type_concept(arm.type).get("text") or arm.type
    what = f"arm '{arm.label}'" + (f" ({kind})" if kind else "")
    return {
        "id": f"{parent}.{ctx.arm_keys[arm_index]}",
        "title": arm.label,
        "textEquivalent": f"The treatment of {what}; the registry lists no intervention for that arm.",
    }


def _treatments_in_period(ctx: _Context, arm_index: int, parent: str) -> list[dict[str, Any]]:
    actions = _arm_treatments(ctx, arm_index, parent)
    return actions or [_label_treatment(ctx, arm_index, parent)]


def _swaps_treatments(ctx: _Context, periods: _Periods) -> bool:
    """Whether period 2 is the other arm's treatment: stated (reversal wording or a crossover design),
    with exactly two arms whose registered treatments differ, and exactly two periods."""
    record = ctx.record
    if len(record.arms) != 2 or len(periods.starts) != 1:
        return False
    reversal = any(c.reversal for c in periods.timing.crossovers if c.at is not None)
    if not (reversal or (record.design.intervention_model or "").upper() == "CROSSOVER"):
        return False
    first, second = (set(ctx.links.arm_interventions[a]) for a in (0, 1))
    return not (first & second)


def _shared_periods(record: TrialRecord) -> _Periods | None:
    if (record.design.intervention_model or "").upper() != "CROSSOVER":
        return None  # a study-level sentence only says how every arm switches in a crossover design
    for text in (record.design.intervention_model_description, record.detailed_description):
        if not may_state_crossover(text):
            continue  # no crossover, no periods; spares extracting the timing of a long description
        shared = _periods_from(extract_timing(text), own=False, shared=True)
        if shared is not None:
            return shared
    return None


def _arm_action(ctx: _Context, arm_index: int) -> dict[str, Any]:
    arm = ctx.record.arms[arm_index]
    key = ctx.arm_keys[arm_index]
    arm_timing = ctx.arm_timing[arm_index]
    periods = _periods_from(arm_timing, own=True, shared=False, arm=arm) or ctx.shared_periods
    children: list[dict[str, Any]] = []
    if periods is None:
        children = _arm_treatments(ctx, arm_index, key) + _timing_actions(key, arm_timing)
    else:
        swap = _swaps_treatments(ctx, periods)
        first_id = f"{key}.period-1"
        taken: dict[tuple[Any, ...], str] = {}
        period_actions = [
            {
                "id": first_id,
                "title": _period_title(1, periods.anchor),
                "textEquivalent": _sentences_of(periods.timing, periods.anchor) if periods.anchor else None,
                "action": _treatments_in_period(ctx, arm_index, first_id) if swap else [],
            }
        ]
        if periods.anchor is not None:
            taken[periods.anchor.key] = first_id
        for n, (at, offset, sentence) in enumerate(periods.starts, 2):
            period_id = f"{key}.period-{n}"
            taken[at.key] = period_id
            period_actions.append(
                {
                    "id": period_id,
                    "title": _period_title(n, at),
                    "textEquivalent": sentence,
                    "relatedAction": [_related(first_id, offset)],
                    "action": _treatments_in_period(ctx, 1 - arm_index, period_id) if swap else [],
                }
            )
        children = period_actions
        if not swap:
            children += _arm_treatments(ctx, arm_index, key)
        children += _timing_actions(key, arm_timing, taken if periods.own else None)
        if not periods.own:
            # the study-level text's washouts belong to the same crossover
            washouts = ExtractedTiming(washouts=periods.timing.washouts)
            children += _timing_actions(f"{key}.study", washouts)
    return {
        "id": key,
        "linkId": key,
        "title": arm.label,
        "description": arm.description,
        "code": arm_type_concept(arm.type) or None,
        "action": children,
    }


def _unassigned_action(ctx: _Context) -> dict[str, Any] | None:
    children = []
    for index, _intervention in enumerate(ctx.record.interventions):
        missing = ctx.links.unmatched_labels[index]
        linked = bool(ctx.links.arms_of(index))
        if linked and not missing:
            continue
        note = None
        if missing:
            quoted = ", ".join(f"'{label}'" for label in missing)
            also = "Also listed" if linked else "Listed"
            note = f"{also} in the registry for arm {quoted}, which matches no registered arm."
        children.append(_intervention_action(ctx, index, UNASSIGNED_ACTION_ID, note))
    if not children:
        return None
    return {
        "id": UNASSIGNED_ACTION_ID,
        "title": "Interventions not linked to a registered arm",
        "description": (
            "Registered interventions that no registered arm receives, or whose registry arm link names "
            "an arm that is not registered. They are part of the protocol; the registry does not say "
            "(or not consistently) which arm receives them."
        ),
        "action": children,
    }


def _description(record: TrialRecord, links: ArmInterventionLinks) -> str:
    arms = len(record.arms)
    interventions = len(record.interventions)
    parts = [
        f"Arms and interventions of {record.registry_id} as registered "
        f"({arms} arm{'s' if arms != 1 else ''}, {interventions} intervention{'s' if interventions != 1 else ''})."
        " Timing is structured only where the registry text states it unambiguously; the registry's"
        " descriptions are kept verbatim on each action."
    ]
    if links.unresolved:
        parts.append(
            f"{links.unresolved} arm/intervention link{'s' if links.unresolved != 1 else ''} in the registry "
            "record match no registered arm or intervention; they are kept as text on the actions concerned."
        )
    return " ".join(parts)


def to_fhir_plan_definition(record: TrialRecord) -> dict[str, Any]:
    """The protocol PlanDefinition (R5): one action per arm, its interventions and their stated timing.

    Only meaningful when ``ids.has_protocol(record)``.  ``status`` is ``active``: the content is a
    published registry record, not a draft, and it is what the registry currently holds; whether the
    study still recruits is a property of the study (ResearchStudy ``progressStatus``), not of this
    definition's publication lifecycle.
    """
    links = resolve_links(record)
    # Descriptions are often copied across a record's arms and interventions: each distinct text's
    # timing is extracted once (an ExtractedTiming is immutable, so sharing it is safe).
    timings: dict[str | None, ExtractedTiming] = {}

    def timing_of(text: str | None) -> ExtractedTiming:
        if text not in timings:
            timings[text] = extract_timing(text)
        return timings[text]

    ctx = _Context(
        record=record,
        links=links,
        arm_keys=ids.arm_keys(record),
        intervention_keys=ids.intervention_keys(record),
        arm_timing=[timing_of(arm.description) for arm in record.arms],
        intervention_timing=[timing_of(i.description) for i in record.interventions],
        shared_periods=_shared_periods(record),
    )
    actions = [_arm_action(ctx, a) for a in range(len(record.arms))]
    unassigned = _unassigned_action(ctx)
    if unassigned is not None:
        actions.append(unassigned)
    org_id = record.org_study_id
    identifier = None
    if org_id is not None:
        identifier = {
            "type": {"text": "Organization's Unique Protocol ID"},
            "value": org_id.id,
            "assigner": {"display": record.organization.name} if record.organization else None,
        }
    return compact(
        {
            "resourceType": "PlanDefinition",
            "id": ids.plan_definition_id(record),
            "identifier": [identifier],
            "title": record.brief_title or record.official_title or record.registry_id,
            "subtitle": "Arms, interventions and their timing",
            "type": concept(coding(PLAN_DEFINITION_TYPE, "clinical-protocol", "Clinical Protocol")),
            "status": "active",
            "description": _description(record, links),
            "action": actions,
        }
    )

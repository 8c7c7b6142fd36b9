"""The registry-neutral intermediate record every reader produces and every mapping consumes.

Vocabulary follows ClinicalTrials.gov API v2 (upper-case enum values such as ``PHASE1``,
``CROSSOVER``, ``ESTIMATED``) because it is the richest and best documented registry schema;
readers of other formats normalise to it.  Enum-like fields are typed ``str`` on purpose: registries
add values over time and a new value must not make a record unreadable; the code tables in
``mappings/codes`` decide what is known, and unknown values are carried as text.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

_PARTIAL_DATE = re.compile(r"^\d{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12]\d|3[01]))?)?$")


def _check_partial_date(value: str) -> str:
    if not _PARTIAL_DATE.match(value):
        raise ValueError(f"not a YYYY, YYYY-MM or YYYY-MM-DD date: {value!r}")
    return value


PartialDate = Annotated[str, AfterValidator(_check_partial_date)]
"""A date kept at the precision the registry gave: ``2012``, ``2012-07`` or ``2012-07-31``."""


class _Model(BaseModel):
    # cache_strings=False: stripping makes pydantic build a new str for every value anyway, and
    # looking each one up in its string cache first (the default) costs more than it saves
    # (~10% of the validation of a record); the values are the same either way.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, cache_strings=False)


class DateStruct(_Model):
    date: PartialDate
    type: str | None = None
    """``ACTUAL`` or ``ESTIMATED`` (legacy ``Anticipated`` is normalised to ``ESTIMATED``)."""


class Identifier(_Model):
    id: str
    type: str | None = None
    """v2 ``SecondaryIdType`` / ``OrgStudyIdType`` (``EUDRACT_NUMBER``, ``NIH``, ``REGISTRY`` ...)."""
    domain: str | None = None
    link: str | None = None


class Org(_Model):
    name: str
    agency_class: str | None = None
    """v2 ``AgencyClass``: NIH, FED, OTHER_GOV, INDIV, INDUSTRY, NETWORK, AMBIG, OTHER, UNKNOWN."""


class ExpandedAccessInfo(_Model):
    has_expanded_access: bool | None = None
    nct_id: str | None = None
    status_for_nct_id: str | None = None


class StatusInfo(_Model):
    overall_status: str | None = None
    """v2 ``Status``: RECRUITING, COMPLETED, UNKNOWN, WITHDRAWN, AVAILABLE, ..."""
    last_known_status: str | None = None
    status_verified_date: PartialDate | None = None
    why_stopped: str | None = None
    delayed_posting: bool | None = None
    expanded_access: ExpandedAccessInfo | None = None
    start: DateStruct | None = None
    primary_completion: DateStruct | None = None
    completion: DateStruct | None = None
    first_submit: PartialDate | None = None
    first_submit_qc: PartialDate | None = None
    first_post: DateStruct | None = None
    results_waived: bool | None = None
    results_first_submit: PartialDate | None = None
    results_first_submit_qc: PartialDate | None = None
    results_first_post: DateStruct | None = None
    disp_first_submit: PartialDate | None = None
    disp_first_submit_qc: PartialDate | None = None
    disp_first_post: DateStruct | None = None
    last_update_submit: PartialDate | None = None
    last_update_submit_qc: PartialDate | None = None
    """Date the last update passed the registry's quality control (legacy ``last_update_submitted_qc``;
    v2 has no such field)."""
    last_update_post: DateStruct | None = None
    registered_retrospectively: bool | None = None
    """WHO ICTRP ``Retrospective_flag``: registered after the first participant was enrolled (ICTRP's
    verdict from the registration and enrolment dates)."""


class ResponsibleParty(_Model):
    type: str | None = None
    """SPONSOR, PRINCIPAL_INVESTIGATOR or SPONSOR_INVESTIGATOR."""
    investigator_full_name: str | None = None
    investigator_title: str | None = None
    investigator_affiliation: str | None = None
    old_name_title: str | None = None
    old_organization: str | None = None


class Oversight(_Model):
    has_dmc: bool | None = None
    is_fda_regulated_drug: bool | None = None
    is_fda_regulated_device: bool | None = None
    is_unapproved_device: bool | None = None
    is_ppsd: bool | None = None
    is_us_export: bool | None = None
    fdaaa801_violation: bool | None = None
    is_fda_regulated: bool | None = None
    """Legacy ``is_fda_regulated`` (retired 2017, before CT.gov split it into the drug and device flags)."""
    is_section_801: bool | None = None
    """Legacy ``is_section_801``: an applicable clinical trial under FDAAA section 801 (retired 2017)."""
    authorities: list[str] = Field(default_factory=list)
    """Legacy ``oversight_info/authority`` (free text, dropped from v2)."""


class AgeGroupCount(_Model):
    label: str
    """The age range as the registry names it (``Adults (18-64 years)``)."""
    count: int


class Design(_Model):
    study_type: str | None = None
    """INTERVENTIONAL, OBSERVATIONAL or EXPANDED_ACCESS."""
    phases: list[str] = Field(default_factory=list)
    """v2 ``Phase`` values in registry order: EARLY_PHASE1, PHASE1 ... PHASE4, NA."""
    allocation: str | None = None
    intervention_model: str | None = None
    intervention_model_description: str | None = None
    primary_purpose: str | None = None
    observational_model: str | None = None
    time_perspective: str | None = None
    masking: str | None = None
    masking_description: str | None = None
    who_masked: list[str] = Field(default_factory=list)
    bio_spec_retention: str | None = None
    bio_spec_description: str | None = None
    enrollment_count: int | None = None
    enrollment_type: str | None = None
    """ACTUAL or ESTIMATED."""
    target_duration: str | None = None
    """As written by the registry, e.g. ``3 Months``."""
    patient_registry: bool | None = None
    expanded_access_types: list[str] = Field(default_factory=list)
    """INDIVIDUAL, INTERMEDIATE, TREATMENT."""
    number_of_arms: int | None = None
    """Stated number of arms/groups (legacy XML only; v2 derives it from the arm list)."""
    endpoint_classification: str | None = None
    """Legacy pre-2017 ``study_design`` "Endpoint Classification" as written (``Safety/Efficacy Study``);
    CT.gov dropped it in 2017 and v2 has no such field."""
    expanded_access_pointer_count: int | None = None
    """v2 ``nPtrsToThisExpAccNctId``: how many study records name this expanded-access record as theirs."""
    planned_subjects_per_age_group: list[AgeGroupCount] = Field(default_factory=list)
    """EU CTR section F.1 (via WHO ICTRP): planned number of subjects per age range."""


class Arm(_Model):
    label: str
    type: str | None = None
    """v2 ``ArmGroupType``: EXPERIMENTAL, ACTIVE_COMPARATOR, PLACEBO_COMPARATOR, ..."""
    description: str | None = None
    intervention_names: list[str] = Field(default_factory=list)
    """``"Type: Name"`` strings as CT.gov writes them (e.g. ``"Drug: sildenafil"``)."""


class Intervention(_Model):
    type: str | None = None
    """v2 ``InterventionType``: DRUG, DEVICE, BIOLOGICAL, PROCEDURE, ..."""
    name: str
    description: str | None = None
    arm_group_labels: list[str] = Field(default_factory=list)
    other_names: list[str] = Field(default_factory=list)


class Outcome(_Model):
    kind: str
    """``primary``, ``secondary`` or ``other``."""
    measure: str
    description: str | None = None
    time_frame: str | None = None
    safety_issue: bool | None = None
    """Legacy ``safety_issue``: the outcome assesses a safety issue (retired 2017; not in v2)."""


class Objective(_Model):
    """A study objective as the registry states it (EU CTR "Main Objective" / "Secondary Objective")."""

    kind: str
    """``primary`` or ``secondary``."""
    description: str


class Eligibility(_Model):
    criteria: str | None = None
    healthy_volunteers: bool | None = None
    sex: str | None = None
    """ALL, FEMALE or MALE."""
    gender_based: bool | None = None
    gender_description: str | None = None
    minimum_age: str | None = None
    """As the registry writes it: ``18 Years``, ``6 Months``, ``N/A`` is normalised to ``None``."""
    maximum_age: str | None = None
    std_ages: list[str] = Field(default_factory=list)
    """CHILD, ADULT, OLDER_ADULT."""
    study_population: str | None = None
    sampling_method: str | None = None


class Contact(_Model):
    name: str | None = None
    role: str | None = None
    """v2 ``ContactRole``: CONTACT, PRINCIPAL_INVESTIGATOR, SUB_INVESTIGATOR, STUDY_CHAIR, ..."""
    phone: str | None = None
    phone_ext: str | None = None
    email: str | None = None
    affiliation: str | None = None
    """Organization the person works for (legacy site ``investigator/affiliation``, WHO ICTRP
    ``Contact_Affiliation``); v2 contacts have none."""
    address: str | None = None
    """Postal address as one text (WHO ICTRP ``Contact_Address``)."""


class Official(_Model):
    name: str
    affiliation: str | None = None
    role: str | None = None
    """v2 ``OfficialRole``: STUDY_CHAIR, STUDY_DIRECTOR, PRINCIPAL_INVESTIGATOR, STUDY_PRINCIPAL_INVESTIGATOR."""


class GeoPoint(_Model):
    lat: float
    lon: float


class Site(_Model):
    facility: str | None = None
    status: str | None = None
    """v2 ``RecruitmentStatus`` of this site."""
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    country: str | None = None
    geo_point: GeoPoint | None = None
    contacts: list[Contact] = Field(default_factory=list)
    """Site contacts and site investigators (v2 folds legacy ``investigator`` into contacts)."""


class Retraction(_Model):
    pmid: str | None = None
    source: str | None = None


class Reference(_Model):
    pmid: str | None = None
    type: str | None = None
    """BACKGROUND, RESULT or DERIVED."""
    citation: str | None = None
    retractions: list[Retraction] = Field(default_factory=list)


class Link(_Model):
    url: str
    label: str | None = None


class AvailIpd(_Model):
    id: str | None = None
    type: str | None = None
    url: str | None = None
    comment: str | None = None


class IpdSharing(_Model):
    ipd_sharing: str | None = None
    """YES, NO or UNDECIDED."""
    description: str | None = None
    info_types: list[str] = Field(default_factory=list)
    time_frame: str | None = None
    access_criteria: str | None = None
    url: str | None = None


class MeshTerm(_Model):
    id: str | None = None
    term: str


class ConditionCode(_Model):
    """A condition code the registry gives with its terminology (WHO ICTRP ``Condition``)."""

    system: str
    """Terminology key of ``mappings/codes/condition_code_system.json`` (``MedDRA``, ``ICD-10-GM``)."""
    code: str
    display: str | None = None
    """The term as the registry writes it next to the code."""
    version: str | None = None
    """Terminology version the registry names (MedDRA ``20.0``)."""
    level: str | None = None
    """MedDRA hierarchy level as written (``LLT``, ``PT``)."""
    system_organ_class: str | None = None
    """MedDRA System Organ Class as written (``10007541 - Cardiac disorders`` or a bare number)."""


class EthicsReview(_Model):
    """One ethics committee review (WHO ICTRP ``Ethics_review_*``, one entry per ``;``-joined item).

    The contact fields are kept under the labels ICTRP gives them: several registries fill them
    shifted (an e-mail as name, the committee's name as address), so they are not reinterpreted.
    """

    status: str | None = None
    """As written: ``Approved``, ``Authorized``, ``Submitted approval`` ..."""
    approval_date: PartialDate | None = None
    contact_name: str | None = None
    contact_address: str | None = None
    contact_phone: str | None = None
    contact_email: str | None = None


class ResultsEvent(_Model):
    """A results submission that has not (yet) been posted: legacy ``pending_results/*``, v2 ``unpostedEvents``."""

    type: str
    """v2 ``UnpostedEventType``: RELEASE (submitted), RESET (returned after QC review), UNRELEASE
    (submission canceled)."""
    date: PartialDate | None = None
    date_unknown: bool | None = None
    """The registry states the event without its date (legacy ``Unknown``, v2 ``dateUnknown``)."""


class ViolationEvent(_Model):
    """An FDAAA 801 violation event CT.gov annotates on the record (v2 ``violationEvents``)."""

    type: str
    """v2 ``ViolationEventType``: VIOLATION_IDENTIFIED, CORRECTION_CONFIRMED, PENALTY_IMPOSED, ..."""
    description: str | None = None
    creation_date: PartialDate | None = None
    issued_date: PartialDate | None = None
    release_date: PartialDate | None = None
    posted_date: PartialDate | None = None


class RegistryAnnotations(_Model):
    """What the registry itself notes about the record's results reporting (v2 ``annotationSection``,
    legacy ``pending_results``): unposted results submissions and FDAAA 801 violations."""

    unposted_responsible_party: str | None = None
    """Who submitted the unposted results, as CT.gov writes it (name, role, organization)."""
    unposted_events: list[ResultsEvent] = Field(default_factory=list)
    violation_events: list[ViolationEvent] = Field(default_factory=list)


class Document(_Model):
    """A protocol, SAP or consent form the registry holds (v2 ``largeDocs``, legacy ``provided_document``)."""

    label: str | None = None
    type_abbrev: str | None = None
    has_protocol: bool | None = None
    has_sap: bool | None = None
    has_icf: bool | None = None
    date: PartialDate | None = None
    upload_date: str | None = None
    filename: str | None = None
    url: str | None = None
    size: int | None = None


class SourceInfo(_Model):
    """Where the record came from, for provenance in the output."""

    registry: str
    """``ctgov`` for ClinicalTrials.gov, or the primary registry of a WHO ICTRP record."""
    format: str
    """``ctgov-v2-json``, ``ctgov-xml`` or ``who-ictrp-xml``."""
    url: str | None = None
    """Canonical URL of the record at its registry."""
    version: str | None = None
    """Registry's version marker: v2 ``versionHolder``, legacy ``download_date`` (as a date)."""


class TrialRecord(_Model):
    source: SourceInfo
    registry_id: str
    """Primary registry id, e.g. ``NCT01854957``; never empty (readers reject records without it)."""
    id_aliases: list[str] = Field(default_factory=list)
    """Obsolete ids of the same study at the same registry (v2 ``nctIdAliases``)."""
    org_study_id: Identifier | None = None
    secondary_ids: list[Identifier] = Field(default_factory=list)
    brief_title: str | None = None
    official_title: str | None = None
    acronym: str | None = None
    organization: Org | None = None
    """The organization that registered the study (v2 ``identificationModule.organization``, legacy ``source``)."""
    status: StatusInfo = Field(default_factory=StatusInfo)
    responsible_party: ResponsibleParty | None = None
    lead_sponsor: Org | None = None
    collaborators: list[Org] = Field(default_factory=list)
    funders: list[Org] = Field(default_factory=list)
    """Sources of monetary or material support (WHO ICTRP ``Source_Support``)."""
    oversight: Oversight | None = None
    ethics_reviews: list[EthicsReview] = Field(default_factory=list)
    brief_summary: str | None = None
    detailed_description: str | None = None
    conditions: list[str] = Field(default_factory=list)
    condition_codes: list[ConditionCode] = Field(default_factory=list)
    therapeutic_areas: list[str] = Field(default_factory=list)
    """EU CTR therapeutic area as written (``Diseases [C] - Nervous System Diseases [C10]``)."""
    keywords: list[str] = Field(default_factory=list)
    design: Design = Field(default_factory=Design)
    arms: list[Arm] = Field(default_factory=list)
    interventions: list[Intervention] = Field(default_factory=list)
    outcomes: list[Outcome] = Field(default_factory=list)
    objectives: list[Objective] = Field(default_factory=list)
    eligibility: Eligibility = Field(default_factory=Eligibility)
    central_contacts: list[Contact] = Field(default_factory=list)
    officials: list[Official] = Field(default_factory=list)
    sites: list[Site] = Field(default_factory=list)
    location_countries: list[str] = Field(default_factory=list)
    location_regions: list[str] = Field(default_factory=list)
    """Regions larger than a country the registry lists among the countries (WHO ICTRP ``Europe``)."""
    removed_countries: list[str] = Field(default_factory=list)
    references: list[Reference] = Field(default_factory=list)
    see_also_links: list[Link] = Field(default_factory=list)
    avail_ipds: list[AvailIpd] = Field(default_factory=list)
    ipd_sharing: IpdSharing | None = None
    documents: list[Document] = Field(default_factory=list)
    no_sap: bool | None = None
    """v2 ``largeDocumentModule.noSap``: the sponsor states that no statistical analysis plan exists."""
    condition_meshes: list[MeshTerm] = Field(default_factory=list)
    condition_mesh_ancestors: list[MeshTerm] = Field(default_factory=list)
    intervention_meshes: list[MeshTerm] = Field(default_factory=list)
    intervention_mesh_ancestors: list[MeshTerm] = Field(default_factory=list)
    has_results: bool | None = None
    annotations: RegistryAnnotations | None = None
    other_registry_records: bool | None = None
    """WHO ICTRP ``other_records``: ICTRP links this record to records of the same trial in other
    registries (which ones it does not say; the secondary ids may name them)."""
    unmapped: list[str] = Field(default_factory=list)
    """Source paths the reader found but does not understand (new registry fields); reported, not dropped silently."""

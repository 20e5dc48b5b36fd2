"""Pydantic mirrors of the aitrust.dev/v1alpha1 custom resources.

These models are the single source of truth: ``aitrust.api.crdgen`` renders the CRD
YAML in ``crds/`` from them, and a test fails when the two drift.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

GROUP = "aitrust.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class Model(BaseModel):
    """Base for API objects: camelCase on the wire, unknown fields rejected."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, use_enum_values=False)


def cel(*rules: tuple[str, str]) -> dict[str, Any]:
    """CEL validations for a model's schema, as (rule, message) pairs."""
    return {"x-kubernetes-validations": [{"rule": r, "message": m} for r, m in rules]}


ShortStr = Annotated[str, Field(max_length=253)]
Cidr = Annotated[str, Field(max_length=64)]


class Tier(StrEnum):
    TRUSTED = "trusted"
    RESTRICTED = "restricted"
    QUARANTINED = "quarantined"

    @property
    def rank(self) -> int:
        return {"quarantined": 0, "restricted": 1, "trusted": 2}[self.value]

    def meets(self, required: Tier) -> bool:
        return self.rank >= required.rank


class WorkloadKind(StrEnum):
    INFERENCE = "inference"
    AGENT = "agent"
    TRAINING = "training"
    NOTEBOOK = "notebook"
    PIPELINE = "pipeline"


class Mode(StrEnum):
    ENFORCE = "enforce"
    AUDIT = "audit"


class Sensitivity(StrEnum):
    PUBLIC = "public"
    INTERNAL = "internal"
    CONFIDENTIAL = "confidential"
    RESTRICTED = "restricted"


class Provider(StrEnum):
    IN_CLUSTER = "in-cluster"
    AWS_BEDROCK = "aws-bedrock"
    GCP_VERTEX = "gcp-vertex"
    AZURE_OPENAI = "azure-openai"
    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    EXTERNAL = "external"


class DataSourceType(StrEnum):
    S3 = "s3"
    GCS = "gcs"
    AZURE_BLOB = "azure-blob"
    POSTGRES = "postgres"
    VECTOR_DB = "vector-db"
    OTHER = "other"


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"


# --- shared pieces -----------------------------------------------------------------


class LabelSelectorRequirement(Model):
    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "self.operator in ['In', 'NotIn'] ? (has(self.values) && size(self.values) > 0)"
                " : (!has(self.values) || size(self.values) == 0)",
                "values must be non-empty for In and NotIn, and empty for Exists and DoesNotExist",
            )
        )
    )
    key: str = Field(description="The label key that the selector applies to.")
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"] = Field(
        description="How the key relates to the values: In, NotIn, Exists or DoesNotExist."
    )
    values: list[ShortStr] | None = Field(
        default=None,
        max_length=64,
        description="Values for In and NotIn; must be empty for Exists and DoesNotExist.",
    )


class LabelSelector(Model):
    match_labels: dict[str, str] | None = Field(
        default=None, alias="matchLabels", description="Labels that a pod must carry, all of them."
    )
    match_expressions: list[LabelSelectorRequirement] | None = Field(
        default=None,
        alias="matchExpressions",
        max_length=32,
        description="Set-based requirements, all of which must hold.",
    )


class PortSpec(Model):
    port: int = Field(ge=1, le=65535, description="The TCP/UDP/SCTP port number.")
    protocol: Literal["TCP", "UDP", "SCTP"] = Field(
        default="TCP", description="The protocol; TCP by default."
    )


class ServiceRef(Model):
    name: str = Field(description="Name of the Service in the same namespace.")
    port: int = Field(ge=1, le=65535, description="Service port that clients use.")


class Condition(Model):
    """A standard Kubernetes condition."""

    type: str = Field(description="Type of the condition, e.g. Ready or Enforced.")
    status: Literal["True", "False", "Unknown"] = Field(description="Status of the condition.")
    reason: str = Field(default="", description="CamelCase reason for the last transition.")
    message: str = Field(default="", description="Human-readable detail of the last transition.")
    last_transition_time: str | None = Field(
        default=None, alias="lastTransitionTime", description="When the status last changed (RFC 3339)."
    )
    observed_generation: int | None = Field(
        default=None,
        alias="observedGeneration",
        description="The metadata.generation this condition reflects.",
    )


LIST_MAP_BY_TYPE: dict[str, Any] = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}


# --- AIWorkload --------------------------------------------------------------------


class KeyRef(Model):
    name: str = Field(description="Name of a Secret or ConfigMap in the workload's namespace.")
    key: str = Field(description="Key inside it that holds the PEM public key.")


class ModelSignature(Model):
    model_config = ConfigDict(
        json_schema_extra=cel(
            ("has(self.publicKey) != has(self.keyRef)", "give exactly one of publicKey or keyRef")
        )
    )

    algorithm: Literal["ed25519", "ecdsa-p256-sha256"] = Field(
        description="Signature algorithm: ed25519, or ECDSA over P-256 with SHA-256."
    )
    signature: str = Field(
        description="Base64 signature over the model digest, or over the manifest if given."
    )
    public_key: str | None = Field(default=None, alias="publicKey", description="PEM-encoded public key.")
    key_ref: KeyRef | None = Field(
        default=None, alias="keyRef", description="Where to read the PEM public key."
    )
    manifest: str | None = Field(
        default=None,
        description="Optional signed JSON manifest, instead of the bare digest; it must name the digest.",
    )


class DeclaredModel(Model):
    name: str = Field(description="Model name, e.g. meta-llama/Llama-3.1-8B-Instruct.")
    source: str = Field(
        description="Where the weights come from: hf://org/model@revision, s3://..., https://..., oci://..."
    )
    digest: str | None = Field(
        default=None,
        pattern=r"^sha256:[a-f0-9]{64}$",
        description="Content digest of the weights, sha256:<64 hex>.",
    )
    signature: ModelSignature | None = Field(default=None, description="Signature over the digest.")


class AccessRef(Model):
    name: str = Field(description="Name of the ModelEndpoint or DataSource.")
    namespace: str | None = Field(
        default=None, description="Namespace of the target; the workload's own namespace when empty."
    )
    min_tier: Tier | None = Field(
        default=None,
        alias="minTier",
        description="Lowest tier at which this workload may reach the target; overrides the target's.",
    )


class Access(Model):
    model_endpoints: list[AccessRef] = Field(
        default_factory=list,
        alias="modelEndpoints",
        max_length=64,
        description="ModelEndpoints this workload may call.",
    )
    data_sources: list[AccessRef] = Field(
        default_factory=list,
        alias="dataSources",
        max_length=64,
        description="DataSources this workload may read or write.",
    )


class AwsIdentity(Model):
    role_arn: str = Field(
        alias="roleArn",
        pattern=r"^arn:aws[a-zA-Z-]*:iam::[0-9]{12}:role/.+$",
        description="IAM role ARN it assumes.",
    )


class GcpIdentity(Model):
    service_account: str = Field(
        alias="serviceAccount", description="Google service account e-mail it acts as."
    )


class AzureIdentity(Model):
    client_id: str = Field(alias="clientId", description="Client id of its managed or workload identity.")


class CloudIdentities(Model):
    aws: AwsIdentity | None = Field(default=None, description="AWS identity, matched against CloudTrail.")
    gcp: GcpIdentity | None = Field(
        default=None, description="GCP identity, matched against Cloud Audit Logs."
    )
    azure: AzureIdentity | None = Field(
        default=None, description="Azure identity, matched against Azure logs."
    )


class TrustPolicyRef(Model):
    name: str = Field(description="Name of a TrustPolicy in the workload's namespace.")


class AIWorkloadSpec(Model):
    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "(has(self.selector.matchLabels) && size(self.selector.matchLabels) > 0)"
                " || (has(self.selector.matchExpressions) && size(self.selector.matchExpressions) > 0)",
                "selector must not be empty: an empty selector would select every pod in the namespace",
            )
        )
    )

    selector: LabelSelector = Field(description="Label selector of the workload's pods, in its namespace.")
    kind: WorkloadKind = Field(
        description="What the workload does: inference, agent, training, notebook, pipeline."
    )
    models: list[DeclaredModel] = Field(
        default_factory=list, max_length=32, description="Models the workload loads."
    )
    access: Access = Field(
        default_factory=Access, description="What the workload may reach, tier permitting."
    )
    cloud_identities: CloudIdentities | None = Field(
        default=None,
        alias="cloudIdentities",
        description="Cloud identities used to map audit-log signals to it.",
    )
    trust_policy_ref: TrustPolicyRef | None = Field(
        default=None,
        alias="trustPolicyRef",
        description="TrustPolicy to use; default: the namespace's 'default' TrustPolicy, then built-ins.",
    )


class Factor(Model):
    id: str = Field(
        description="Stable id: AIT-P### for posture checks, the rule for signals, BASE for the base."
    )
    points: int = Field(description="Points this factor adds (positive) or removes (negative).")
    reason: str = Field(description="Why the factor applies.")
    source: str = Field(description="posture, signal, signature, baseline or policy.")
    references: list[str] = Field(
        default_factory=list, description="OWASP LLM, MITRE ATLAS and NSA/CISA ids."
    )


class Grant(Model):
    target: str = Field(description="Kind/namespace/name of the ModelEndpoint or DataSource.")
    allowed: bool = Field(description="Whether the workload may reach it at its current tier.")
    reason: str = Field(description="Why it is allowed or denied.")


class SignalRecord(Model):
    id: str = Field(description="Delivery id (uuid or eventID) used to deduplicate.")
    source: str = Field(description="falco, cloudtrail, azure, gcp, custom or anomaly.")
    rule: str = Field(description="Rule or event name.")
    severity: Severity = Field(description="Normalised severity.")
    points: int = Field(ge=0, description="Penalty in points at the time of the signal, before decay.")
    time: str = Field(description="When the signal happened (RFC 3339).")
    quarantine_until: str | None = Field(
        default=None, alias="quarantineUntil", description="End of the quarantine hold it forced, if any."
    )


class QuarantineStatus(Model):
    active: bool = Field(description="Whether a quarantine hold is in force.")
    reason: str = Field(default="", description="The rule that forced it.")
    since: str | None = Field(default=None, description="When the hold began (RFC 3339).")
    until: str | None = Field(default=None, description="When it ends; empty means until acknowledged.")


class AIWorkloadStatus(Model):
    trust_score: int | None = Field(
        default=None, alias="trustScore", ge=0, le=100, description="Score 0-100."
    )
    posture_score: int | None = Field(
        default=None, alias="postureScore", ge=0, le=100, description="Posture baseline before signals."
    )
    tier: Tier | None = Field(default=None, description="trusted, restricted or quarantined.")
    mode: Mode | None = Field(default=None, description="The effective TrustPolicy mode.")
    factors: list[Factor] = Field(default_factory=list, description="Ordered factors that sum to the score.")
    grants: list[Grant] = Field(default_factory=list, description="Access to each referenced target.")
    signals: list[SignalRecord] = Field(
        default_factory=list, max_length=100, description="Recent signals still contributing (bounded)."
    )
    quarantine: QuarantineStatus | None = Field(default=None, description="Quarantine hold, if any.")
    baseline: dict[str, Any] | None = Field(
        default=None, description="Learnt behavioural baseline (bounded, opaque to users)."
    )
    matched_pods: int | None = Field(
        default=None, alias="matchedPods", description="Pods the selector matches."
    )
    last_signal_time: str | None = Field(
        default=None, alias="lastSignalTime", description="Time of the most recent signal (RFC 3339)."
    )
    conditions: list[Condition] = Field(
        default_factory=list, description="Ready, Enforced and friends.", json_schema_extra=LIST_MAP_BY_TYPE
    )
    observed_generation: int | None = Field(
        default=None, alias="observedGeneration", description="The metadata.generation last reconciled."
    )


# --- ModelEndpoint and DataSource --------------------------------------------------


_TARGET_RULES = (
    ("!(has(self.selector) && has(self.service))", "give selector or service, not both"),
    ("!has(self.cidrs) || self.cidrs.all(c, isCIDR(c))", "every entry of cidrs must be a valid CIDR"),
)


class TargetSpec(Model):
    model_config = ConfigDict(json_schema_extra=cel(*_TARGET_RULES))
    selector: LabelSelector | None = Field(default=None, description="Pods serving it (in-cluster targets).")
    service: ServiceRef | None = Field(
        default=None, description="Service in front of it (in-cluster targets)."
    )
    ports: list[PortSpec] = Field(
        default_factory=list, max_length=32, description="Ports that clients connect to."
    )
    cidrs: list[Cidr] = Field(
        default_factory=list, max_length=64, description="IP blocks of an external target, in CIDR notation."
    )
    hosts: list[ShortStr] = Field(
        default_factory=list, max_length=64, description="Host names of an external target, for OPA/egress."
    )
    region: str | None = Field(default=None, description="Cloud region of the target, e.g. us-east-1.")
    sensitivity: Sensitivity = Field(
        default=Sensitivity.INTERNAL, description="Data sensitivity of the target."
    )
    min_tier: Tier = Field(
        default=Tier.RESTRICTED, alias="minTier", description="Lowest tier a workload needs to reach it."
    )


class ModelEndpointSpec(TargetSpec):
    model_config = ConfigDict(
        json_schema_extra=cel(
            *_TARGET_RULES,
            (
                "self.provider != 'in-cluster' || has(self.selector) || has(self.service)",
                "provider in-cluster requires selector or service",
            ),
            (
                "self.provider == 'in-cluster' || (has(self.cidrs) && size(self.cidrs) > 0)"
                " || (has(self.hosts) && size(self.hosts) > 0)",
                "an external provider requires cidrs or hosts",
            ),
        )
    )

    provider: Provider = Field(description="Who serves the model: in-cluster or a managed provider.")


class DataSourceSpec(TargetSpec):
    model_config = ConfigDict(
        json_schema_extra=cel(
            *_TARGET_RULES,
            (
                "has(self.selector) || has(self.service) || (has(self.cidrs) && size(self.cidrs) > 0)"
                " || (has(self.hosts) && size(self.hosts) > 0)",
                "a DataSource needs selector or service (in-cluster), or cidrs or hosts (external)",
            ),
        )
    )

    type: DataSourceType = Field(
        description="Kind of store: s3, gcs, azure-blob, postgres, vector-db, other."
    )


class TargetStatus(Model):
    conditions: list[Condition] = Field(
        default_factory=list, description="Ready and friends.", json_schema_extra=LIST_MAP_BY_TYPE
    )
    observed_generation: int | None = Field(
        default=None, alias="observedGeneration", description="Last seen."
    )


# --- TrustPolicy -------------------------------------------------------------------


class Thresholds(Model):
    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "self.trusted > self.restricted",
                "thresholds.trusted must be greater than thresholds.restricted",
            )
        )
    )

    trusted: int = Field(
        default=80, ge=0, le=100, description="Score at or above which a workload is trusted."
    )
    restricted: int = Field(
        default=50,
        ge=0,
        le=100,
        description="Score at or above which it is restricted; below is quarantined.",
    )


class CheckOverride(Model):
    id: str = Field(pattern=r"^AIT-P[0-9]{3}$", description="Posture check id, AIT-P###.")
    weight: int | None = Field(
        default=None, ge=0, le=100, description="Points the check removes when it fails."
    )
    enabled: bool = Field(default=True, description="Whether the check runs.")


class PostureSettings(Model):
    checks: list[CheckOverride] = Field(
        default_factory=list, max_length=128, description="Overrides of posture checks."
    )
    allowed_registries: list[str] = Field(
        default_factory=list,
        alias="allowedRegistries",
        description="Image registries (prefixes) that pass the registry check; empty allows any.",
    )


class SeverityPoints(Model):
    critical: int = Field(default=60, ge=0, le=100, description="Penalty of a critical signal.")
    high: int = Field(default=35, ge=0, le=100, description="Penalty of a high signal.")
    medium: int = Field(default=15, ge=0, le=100, description="Penalty of a medium signal.")
    low: int = Field(default=5, ge=0, le=100, description="Penalty of a low signal.")
    info: int = Field(default=0, ge=0, le=100, description="Penalty of an informational signal.")


class SignalMatch(Model):
    rule: str | None = Field(default=None, description="Regular expression over the Falco rule name.")
    event_name: str | None = Field(
        default=None, alias="eventName", description="Regular expression over the cloud API event name."
    )
    source: str | None = Field(
        default=None, description="Signal source: falco, cloudtrail, azure, gcp, custom."
    )
    tags: list[str] = Field(default_factory=list, description="Tags that must all be present.")


class QuarantineAction(Model):
    duration: str | None = Field(
        default=None,
        pattern=DURATION_PATTERN,
        description="How long the hold lasts, e.g. 30m; empty means until acknowledged.",
    )


class SignalRule(Model):
    name: str = Field(description="Name of the rule, shown as the factor id.")
    match: SignalMatch = Field(description="What the rule matches; all given fields must match.")
    points: int = Field(ge=0, le=100, description="Penalty of a matching signal, instead of its severity's.")
    quarantine: QuarantineAction | None = Field(default=None, description="Force quarantine when it matches.")
    references: list[str] = Field(default_factory=list, description="ATLAS/OWASP ids to attach.")


class BaselineSettings(Model):
    enabled: bool = Field(default=True, description="Learn a behavioural baseline and flag deviations.")
    learning_window: str = Field(
        default="24h",
        alias="learningWindow",
        pattern=DURATION_PATTERN,
        description="How long to learn first.",
    )
    rate_factor: float = Field(
        default=10.0, alias="rateFactor", gt=1, description="Rate multiple over baseline that is anomalous."
    )


class SignalSettings(Model):
    half_life: str = Field(
        default="1h",
        alias="halfLife",
        pattern=DURATION_PATTERN,
        description="Half-life of a signal's penalty.",
    )
    severity_points: SeverityPoints = Field(
        default_factory=SeverityPoints, alias="severityPoints", description="Penalty by severity."
    )
    rules: list[SignalRule] = Field(
        default_factory=list, max_length=128, description="Rules evaluated before the built-in ones."
    )
    builtin_rules: bool = Field(
        default=True, alias="builtinRules", description="Also apply aitrust's default AI attack rules."
    )
    baseline: BaselineSettings = Field(default_factory=BaselineSettings, description="Behavioural baseline.")


class EgressRule(Model):
    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "has(self.cidr) != (has(self.namespaceSelector) || has(self.podSelector))",
                "give either cidr or namespaceSelector/podSelector",
            ),
            ("!has(self.cidr) || isCIDR(self.cidr)", "cidr must be a valid CIDR"),
        )
    )
    cidr: Cidr | None = Field(default=None, description="An IP block, CIDR notation.")
    namespace_selector: LabelSelector | None = Field(
        default=None, alias="namespaceSelector", description="Namespaces allowed as destinations."
    )
    pod_selector: LabelSelector | None = Field(
        default=None, alias="podSelector", description="Pods allowed as destinations."
    )
    ports: list[PortSpec] = Field(default_factory=list, description="Ports; all ports when empty.")


class QuarantineSettings(Model):
    allow_dns: bool = Field(default=True, alias="allowDNS", description="Keep DNS egress while quarantined.")
    allowed_egress: list[EgressRule] = Field(
        default_factory=list,
        alias="allowedEgress",
        max_length=16,
        description="Extra egress kept while quarantined.",
    )
    allowed_ingress_namespaces: list[str] = Field(
        default_factory=list,
        alias="allowedIngressNamespaces",
        max_length=32,
        description="Namespaces (e.g. monitoring) that may still connect to a quarantined workload.",
    )


class TrustPolicySpec(Model):
    mode: Mode = Field(default=Mode.ENFORCE, description="enforce writes policies; audit only reports them.")
    thresholds: Thresholds = Field(default_factory=Thresholds, description="Tier thresholds.")
    hysteresis: int = Field(
        default=5, ge=0, le=50, description="Points a score must clear a threshold by before the tier rises."
    )
    posture: PostureSettings = Field(default_factory=PostureSettings, description="Posture check settings.")
    signals: SignalSettings = Field(default_factory=SignalSettings, description="Runtime signal settings.")
    quarantine: QuarantineSettings = Field(
        default_factory=QuarantineSettings, description="Quarantine settings."
    )
    allow_dns: bool = Field(
        default=True, alias="allowDNS", description="Allow DNS to kube-dns for managed workloads."
    )


class PolicyStatus(TargetStatus):
    pass


# --- ShadowAIReport (written by the operator only) ---------------------------------


class ShadowAIWorkload(Model):
    kind: str = Field(description="Kind of the owning workload: Deployment, StatefulSet, Job, Pod, ...")
    name: str = Field(description="Name of the owning workload.")
    pods: int = Field(ge=0, description="Pods of it that look like AI.")
    category: str | None = Field(
        default=None, description="inference, agent, training, notebook or datastore."
    )
    confidence: float = Field(ge=0, le=1, description="Classifier confidence, 0-1.")
    evidence: list[str] = Field(default_factory=list, description="The strongest evidence, strongest first.")


class ShadowAIReportSpec(Model):
    """Empty: a ShadowAIReport has nothing to configure; its findings are in status."""


class ShadowAIReportStatus(Model):
    count: int = Field(
        default=0, ge=0, description="AI workloads of the namespace that no AIWorkload selects."
    )
    workloads: list[ShadowAIWorkload] = Field(
        default_factory=list, description="Each such workload, with its evidence."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready (True while the report is current).",
        json_schema_extra=LIST_MAP_BY_TYPE,
    )


# --- whole objects ----------------------------------------------------------------


class ObjectMeta(BaseModel):
    """The parts of metadata the operator reads; the rest passes through."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)
    name: str
    namespace: str = "default"
    uid: str | None = None
    generation: int | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class Resource(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    api_version: str = Field(default=API_VERSION, alias="apiVersion")
    kind: str
    metadata: ObjectMeta


class AIWorkload(Resource):
    kind: Literal["AIWorkload"] = "AIWorkload"
    spec: AIWorkloadSpec
    status: AIWorkloadStatus = Field(default_factory=AIWorkloadStatus)


class ModelEndpoint(Resource):
    kind: Literal["ModelEndpoint"] = "ModelEndpoint"
    spec: ModelEndpointSpec
    status: TargetStatus = Field(default_factory=TargetStatus)


class DataSource(Resource):
    kind: Literal["DataSource"] = "DataSource"
    spec: DataSourceSpec
    status: TargetStatus = Field(default_factory=TargetStatus)


class TrustPolicy(Resource):
    kind: Literal["TrustPolicy"] = "TrustPolicy"
    spec: TrustPolicySpec = Field(default_factory=TrustPolicySpec)
    status: PolicyStatus = Field(default_factory=PolicyStatus)


class ShadowAIReport(Resource):
    kind: Literal["ShadowAIReport"] = "ShadowAIReport"
    spec: ShadowAIReportSpec = Field(default_factory=ShadowAIReportSpec)
    status: ShadowAIReportStatus = Field(default_factory=ShadowAIReportStatus)


Target = Annotated[ModelEndpoint | DataSource, Field(discriminator="kind")]

package aitrust.authz_test

import data.aitrust.authz

_llm := "ModelEndpoint/models/llm"

_pii := "DataSource/data/pii"

_workloads := {
	"team-a": {
		"agent": {
			"tier": "restricted", "score": 62, "mode": "enforce",
			"serviceAccounts": ["agent-sa", "shared"],
			"grants": {
				_llm: {"allowed": true, "reason": "tier restricted meets minTier restricted"},
				_pii: {"allowed": false, "reason": "tier restricted is below minTier trusted"},
				"ModelEndpoint/team-a/local": {"allowed": true, "reason": "tier restricted meets minTier restricted"},
			},
		},
		"trainer": {
			"tier": "trusted", "score": 91, "mode": "enforce",
			"serviceAccounts": ["shared"],
			"grants": {_llm: {"allowed": true, "reason": "tier trusted meets minTier restricted"}},
		},
		"jailed": {
			"tier": "quarantined", "score": 12, "mode": "enforce",
			"serviceAccounts": ["jailed-sa"],
			# stale data saying allowed: quarantine must still deny
			"grants": {_llm: {"allowed": true, "reason": "stale"}},
		},
	},
	"team-b": {
		"notebook": {
			"tier": "quarantined", "score": 30, "mode": "audit",
			"serviceAccounts": ["nb-sa", "mixed"],
			"grants": {_llm: {"allowed": false, "reason": "tier quarantined is below minTier restricted"}},
		},
		"batch": {
			"tier": "trusted", "score": 88, "mode": "enforce",
			"serviceAccounts": ["mixed"],
			"grants": {_llm: {"allowed": true, "reason": "tier trusted meets minTier restricted"}},
		},
	},
}

_subjects := {
	"team-a": {"agent-sa": ["agent"], "shared": ["agent", "trainer"], "jailed-sa": ["jailed"], "ghosts": ["gone", "lost"]},
	"team-b": {"nb-sa": ["notebook"], "mixed": ["batch", "notebook"]},
}

_llm_resource := {"kind": "ModelEndpoint", "namespace": "models", "name": "llm"}

_pii_resource := {"kind": "DataSource", "namespace": "data", "name": "pii"}

_decide(subject, resource) := d if {
	d := authz.decision with input as {"subject": subject, "resource": resource, "action": "invoke"}
		with data.aitrust.workloads as _workloads
		with data.aitrust.subjects as _subjects
}

_allow(subject, resource) := a if {
	a := authz.allow with input as {"subject": subject, "resource": resource, "action": "invoke"}
		with data.aitrust.workloads as _workloads
		with data.aitrust.subjects as _subjects
}

# --- allowed ----------------------------------------------------------------------

test_service_account_granted if {
	d := _decide({"namespace": "team-a", "serviceAccount": "agent-sa"}, _llm_resource)
	d.allow == true
	d.reason == "tier restricted meets minTier restricted"
	d.tier == "restricted"
	d.score == 62
	d.mode == "enforce"
	d.workloads == ["agent"]
	_allow({"namespace": "team-a", "serviceAccount": "agent-sa"}, _llm_resource) == true
}

test_named_workload_with_its_service_account if {
	d := _decide({"namespace": "team-a", "workload": "agent", "serviceAccount": "agent-sa"}, _llm_resource)
	d.allow == true
	d.workloads == ["agent"]
}

test_named_workload_without_service_account if {
	d := _decide({"namespace": "team-a", "workload": "trainer"}, _llm_resource)
	d.allow == true
	d.tier == "trusted"
}

test_spiffe_id_resolves_namespace_and_service_account if {
	d := _decide({"spiffeId": "spiffe://cluster.local/ns/team-a/sa/agent-sa"}, _llm_resource)
	d.allow == true
	d.workloads == ["agent"]
}

test_spiffe_id_agreeing_with_namespace if {
	d := _decide({"namespace": "team-a", "spiffeId": "spiffe://td/ns/team-a/sa/agent-sa"}, _llm_resource)
	d.allow == true
}

test_resource_namespace_defaults_to_subject_namespace if {
	d := _decide({"namespace": "team-a", "serviceAccount": "agent-sa"}, {"kind": "ModelEndpoint", "name": "local"})
	d.allow == true
	not _decide({"namespace": "team-a", "serviceAccount": "agent-sa"}, {"kind": "ModelEndpoint", "name": "llm"}).allow
}

test_all_workloads_of_a_shared_service_account_allow if {
	d := _decide({"namespace": "team-a", "serviceAccount": "shared"}, _llm_resource)
	d.allow == true
	d.reason == "allowed for every workload using service account team-a/shared"
	d.workloads == ["agent", "trainer"]
	d.tier == "restricted"
	d.score == 62
	d.mode == "enforce"
}

# --- denied -----------------------------------------------------------------------

test_tier_too_low if {
	d := _decide({"namespace": "team-a", "serviceAccount": "agent-sa"}, _pii_resource)
	d.allow == false
	d.reason == "tier restricted is below minTier trusted"
	d.tier == "restricted"
	_allow({"namespace": "team-a", "serviceAccount": "agent-sa"}, _pii_resource) == false
}

test_not_granted if {
	d := _decide({"namespace": "team-a", "workload": "trainer"}, _pii_resource)
	d.allow == false
	d.reason == "workload has no grant for DataSource/data/pii"
}

test_quarantined_denies_even_a_stale_grant if {
	d := _decide({"namespace": "team-a", "serviceAccount": "jailed-sa"}, _llm_resource)
	d.allow == false
	d.reason == "workload is quarantined"
	d.tier == "quarantined"
}

test_unknown_service_account if {
	d := _decide({"namespace": "team-a", "serviceAccount": "stranger"}, _llm_resource)
	d.allow == false
	d.reason == "unknown subject: service account team-a/stranger is used by no AIWorkload"
	d.tier == null
}

test_unknown_namespace if {
	d := _decide({"namespace": "team-z", "serviceAccount": "agent-sa"}, _llm_resource)
	d.allow == false
	startswith(d.reason, "unknown subject")
}

test_unknown_named_workload if {
	d := _decide({"namespace": "team-a", "workload": "ghost"}, _llm_resource)
	d.allow == false
	d.reason == "unknown subject: workload team-a/ghost is not managed by aitrust"
	d.workloads == ["ghost"]
}

test_named_workload_with_foreign_service_account if {
	d := _decide({"namespace": "team-a", "workload": "trainer", "serviceAccount": "agent-sa"}, _llm_resource)
	d.allow == false
	d.reason == "service account agent-sa is not used by workload team-a/trainer"
}

test_malformed_spiffe_id if {
	d := _decide({"spiffeId": "spiffe://td/team-a/agent-sa"}, _llm_resource)
	d.allow == false
	startswith(d.reason, "spiffeId is not")
}

test_spiffe_namespace_mismatch if {
	d := _decide({"namespace": "team-b", "spiffeId": "spiffe://td/ns/team-a/sa/agent-sa"}, _llm_resource)
	d.allow == false
	d.reason == "subject.namespace does not match the SPIFFE id"
}

test_missing_namespace if {
	d := _decide({"serviceAccount": "agent-sa"}, _llm_resource)
	d.reason == "subject has no namespace"
	d.allow == false
}

test_unsupported_kind if {
	d := _decide({"namespace": "team-a", "serviceAccount": "agent-sa"}, {"kind": "Secret", "namespace": "models", "name": "llm"})
	d.reason == "resource.kind must be ModelEndpoint or DataSource"
}

test_missing_resource_name if {
	d := _decide({"namespace": "team-a", "serviceAccount": "agent-sa"}, {"kind": "ModelEndpoint", "namespace": "models"})
	d.reason == "resource.name is required"
}

test_subject_without_identity if {
	d := _decide({"namespace": "team-a"}, _llm_resource)
	d.reason == "subject names no workload, serviceAccount or spiffeId"
	d.allow == false
}

test_empty_input_denies_with_default if {
	not authz.allow with input as {}
	d := authz.decision with input as {}
	d.allow == false
	d.reason != ""
}

test_no_data_loaded_denies if {
	d := authz.decision with input as {"subject": {"namespace": "team-a", "workload": "agent"}, "resource": _llm_resource}
	d.allow == false
	startswith(d.reason, "unknown subject")
}

test_shared_service_account_with_different_answers_is_ambiguous if {
	d := _decide({"namespace": "team-a", "serviceAccount": "shared"}, _pii_resource)
	d.allow == false
	d.reason == concat("", [
		"denied for every workload using service account team-a/shared: ",
		"agent: tier restricted is below minTier trusted; trainer: workload has no grant for DataSource/data/pii",
	])
}

test_shared_service_account_partly_allowed_denies if {
	# batch is granted, ghost is unknown: one "no" makes the shared identity ambiguous
	subjects := object.union(_subjects, {"team-b": {"mixed": ["batch", "ghost"]}})
	d := authz.decision with input as {"subject": {"namespace": "team-b", "serviceAccount": "mixed"}, "resource": _llm_resource}
		with data.aitrust.workloads as _workloads
		with data.aitrust.subjects as subjects
	d.allow == false
	startswith(d.reason, "ambiguous: workloads using service account team-b/mixed get different answers")
	contains(d.reason, "batch: tier trusted meets minTier restricted")
	contains(d.reason, "ghost: unknown subject")
	d.score == null
	d.tier == "trusted"
}

test_shared_service_account_of_unknown_workloads if {
	d := _decide({"namespace": "team-a", "serviceAccount": "ghosts"}, _llm_resource)
	d.allow == false
	d.tier == null
	d.workloads == ["gone", "lost"]
	startswith(d.reason, "denied for every workload")
}

# --- audit mode -------------------------------------------------------------------

test_audit_mode_reports_instead_of_denying if {
	d := _decide({"namespace": "team-b", "serviceAccount": "nb-sa"}, _llm_resource)
	d.allow == true
	d.reason == "audit mode, would deny: workload is quarantined"
	d.mode == "audit"
	d.tier == "quarantined"
}

test_audit_mode_reports_a_missing_grant if {
	workloads := object.union(_workloads, {"team-b": {"notebook": {"tier": "restricted"}}})
	d := authz.decision with input as {"subject": {"namespace": "team-b", "workload": "notebook"}, "resource": _pii_resource}
		with data.aitrust.workloads as workloads
		with data.aitrust.subjects as _subjects
	d.allow == true
	d.reason == "audit mode, would deny: workload has no grant for DataSource/data/pii"
	d.tier == "restricted"
	d.mode == "audit"
	d.workloads == ["notebook"]
}

test_audit_mode_reports_a_denied_grant if {
	workloads := object.union(_workloads, {"team-b": {"notebook": {"tier": "restricted", "score": 55}}})
	d := authz.decision with input as {"subject": {"namespace": "team-b", "serviceAccount": "nb-sa"}, "resource": _llm_resource}
		with data.aitrust.workloads as workloads
		with data.aitrust.subjects as _subjects
	d.allow == true
	d.reason == "audit mode, would deny: tier quarantined is below minTier restricted"
	d.tier == "restricted"
	d.score == 55
	d.mode == "audit"
}

test_enforce_mode_grant_denied_but_not_quarantined if {
	d := _decide({"namespace": "team-a", "workload": "agent"}, _pii_resource)
	d.allow == false
	d.reason == "tier restricted is below minTier trusted"
	d.mode == "enforce"
	d.workloads == ["agent"]
}

test_audit_mode_does_not_excuse_identity_errors if {
	d := _decide({"namespace": "team-b", "workload": "notebook", "serviceAccount": "intruder"}, _llm_resource)
	d.allow == false
	d.reason == "service account intruder is not used by workload team-b/notebook"
}

test_shared_service_account_mixed_modes if {
	d := _decide({"namespace": "team-b", "serviceAccount": "mixed"}, _llm_resource)
	d.allow == true
	d.mode == "mixed"
	d.tier == "quarantined"
	d.score == 30
}

test_no_data_loaded_denies_service_accounts if {
	d := authz.decision with input as {"subject": {"namespace": "team-a", "serviceAccount": "agent-sa"}, "resource": _llm_resource}
	d.allow == false
	startswith(d.reason, "unknown subject: service account")
}

test_malformed_workload_document_falls_back_to_default_deny if {
	broken := {"team-a": {"agent": {"serviceAccounts": ["agent-sa"], "grants": {}}}}
	d := authz.decision with input as {"subject": {"namespace": "team-a", "serviceAccount": "agent-sa"}, "resource": _llm_resource}
		with data.aitrust.workloads as broken
		with data.aitrust.subjects as _subjects
	d.allow == false
	d.reason == "no decision"
	not authz.allow with input as {"subject": {"namespace": "team-a", "serviceAccount": "agent-sa"}, "resource": _llm_resource}
		with data.aitrust.workloads as broken
		with data.aitrust.subjects as _subjects
}

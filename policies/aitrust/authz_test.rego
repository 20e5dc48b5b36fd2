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

# The read-only action of each kind: what a granted workload may do at any tier.
_action_for(resource) := "read" if {
	resource.kind == "DataSource"
} else := "invoke"

_decide(subject, resource) := d if {
	d := authz.decision with input as {"subject": subject, "resource": resource, "action": _action_for(resource)}
		with data.aitrust_data.workloads as _workloads
		with data.aitrust_data.subjects as _subjects
}

_allow(subject, resource) := a if {
	a := authz.allow with input as {"subject": subject, "resource": resource, "action": _action_for(resource)}
		with data.aitrust_data.workloads as _workloads
		with data.aitrust_data.subjects as _subjects
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
	d := authz.decision with input as {"subject": {"namespace": "team-a", "workload": "agent"}, "resource": _llm_resource, "action": "invoke"}
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
	d := authz.decision with input as {"subject": {"namespace": "team-b", "serviceAccount": "mixed"}, "resource": _llm_resource, "action": "invoke"}
		with data.aitrust_data.workloads as _workloads
		with data.aitrust_data.subjects as subjects
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
	d := authz.decision with input as {"subject": {"namespace": "team-b", "workload": "notebook"}, "resource": _pii_resource, "action": "read"}
		with data.aitrust_data.workloads as workloads
		with data.aitrust_data.subjects as _subjects
	d.allow == true
	d.reason == "audit mode, would deny: workload has no grant for DataSource/data/pii"
	d.tier == "restricted"
	d.mode == "audit"
	d.workloads == ["notebook"]
}

test_audit_mode_reports_a_denied_grant if {
	workloads := object.union(_workloads, {"team-b": {"notebook": {"tier": "restricted", "score": 55}}})
	d := authz.decision with input as {"subject": {"namespace": "team-b", "serviceAccount": "nb-sa"}, "resource": _llm_resource, "action": "invoke"}
		with data.aitrust_data.workloads as workloads
		with data.aitrust_data.subjects as _subjects
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
	d := authz.decision with input as {"subject": {"namespace": "team-a", "serviceAccount": "agent-sa"}, "resource": _llm_resource, "action": "invoke"}
	d.allow == false
	startswith(d.reason, "unknown subject: service account")
}

test_malformed_workload_document_falls_back_to_default_deny if {
	broken := {"team-a": {"agent": {"serviceAccounts": ["agent-sa"], "grants": {}}}}
	d := authz.decision with input as {"subject": {"namespace": "team-a", "serviceAccount": "agent-sa"}, "resource": _llm_resource, "action": "invoke"}
		with data.aitrust_data.workloads as broken
		with data.aitrust_data.subjects as _subjects
	d.allow == false
	d.reason == "no decision"
	not authz.allow with input as {"subject": {"namespace": "team-a", "serviceAccount": "agent-sa"}, "resource": _llm_resource, "action": "invoke"}
		with data.aitrust_data.workloads as broken
		with data.aitrust_data.subjects as _subjects
}

# --- malformed input: denied with a reason naming the field, in every mode ---------
#
# Each case runs for a workload in enforce mode (agent, granted the llm) and for a quarantined
# one in audit mode (notebook, whose well-formed requests are allowed with "would deny").

_enforce_subject := {"namespace": "team-a", "serviceAccount": "agent-sa"}

_audit_subject := {"namespace": "team-b", "serviceAccount": "nb-sa"}

_rejected(inp, reason) if {
	d := authz.decision with input as inp
		with data.aitrust_data.workloads as _workloads
		with data.aitrust_data.subjects as _subjects
	d == {"allow": false, "reason": reason, "tier": null, "score": null, "mode": null, "workloads": []}
	a := authz.allow with input as inp
		with data.aitrust_data.workloads as _workloads
		with data.aitrust_data.subjects as _subjects
	a == false
}

# The resource, bad, is rejected for both subjects.
_resource_rejected(resource, reason) if {
	_rejected({"subject": _enforce_subject, "resource": resource, "action": "invoke"}, reason)
	_rejected({"subject": _audit_subject, "resource": resource, "action": "invoke"}, reason)
}

# The subject fields in bad, merged over each subject, are rejected.
_subject_rejected(bad, reason) if {
	_rejected({"subject": object.union(_enforce_subject, bad), "resource": _llm_resource, "action": "invoke"}, reason)
	_rejected({"subject": object.union(_audit_subject, bad), "resource": _llm_resource, "action": "invoke"}, reason)
}

_kind_reason := "resource.kind must be ModelEndpoint or DataSource"

test_well_formed_baseline_for_the_malformed_cases if {
	_decide(_enforce_subject, _llm_resource).allow == true
	d := _decide(_audit_subject, _llm_resource)
	d.allow == true
	d.reason == "audit mode, would deny: workload is quarantined"
}

test_missing_kind if {
	_resource_rejected({"namespace": "models", "name": "llm"}, _kind_reason)
}

test_kind_of_wrong_type if {
	_resource_rejected({"kind": 5, "namespace": "models", "name": "llm"}, _kind_reason)
	_resource_rejected({"kind": null, "namespace": "models", "name": "llm"}, _kind_reason)
	_resource_rejected({"kind": false, "namespace": "models", "name": "llm"}, _kind_reason)
	_resource_rejected({"kind": ["ModelEndpoint"], "namespace": "models", "name": "llm"}, _kind_reason)
	_resource_rejected({"kind": {"ModelEndpoint": true}, "namespace": "models", "name": "llm"}, _kind_reason)
}

test_unknown_or_empty_kind_in_both_modes if {
	_resource_rejected({"kind": "Secret", "namespace": "models", "name": "llm"}, _kind_reason)
	_resource_rejected({"kind": "modelendpoint", "namespace": "models", "name": "llm"}, _kind_reason)
	_resource_rejected({"kind": "", "namespace": "models", "name": "llm"}, _kind_reason)
}

test_empty_resource_object if {
	_resource_rejected({}, _kind_reason)
}

test_missing_resource if {
	_rejected({"subject": _enforce_subject, "action": "invoke"}, "resource is required")
	_rejected({"subject": _audit_subject, "action": "invoke"}, "resource is required")
	_resource_rejected(false, "resource is required")
}

test_resource_not_an_object if {
	_resource_rejected("ModelEndpoint/models/llm", "resource must be an object")
	_resource_rejected(["ModelEndpoint", "models", "llm"], "resource must be an object")
	_resource_rejected(null, "resource must be an object")
	_resource_rejected(7, "resource must be an object")
}

test_missing_or_empty_resource_name if {
	_resource_rejected({"kind": "ModelEndpoint", "namespace": "models"}, "resource.name is required")
	_resource_rejected({"kind": "ModelEndpoint", "namespace": "models", "name": ""}, "resource.name is required")
}

test_resource_name_of_wrong_type if {
	_resource_rejected({"kind": "ModelEndpoint", "namespace": "models", "name": 5}, "resource.name must be a string")
	_resource_rejected({"kind": "ModelEndpoint", "namespace": "models", "name": null}, "resource.name must be a string")
	_resource_rejected({"kind": "ModelEndpoint", "namespace": "models", "name": false}, "resource.name must be a string")
	_resource_rejected({"kind": "ModelEndpoint", "namespace": "models", "name": ["llm"]}, "resource.name must be a string")
}

test_resource_namespace_of_wrong_type if {
	_resource_rejected({"kind": "ModelEndpoint", "namespace": 1, "name": "llm"}, "resource.namespace must be a string")
	_resource_rejected({"kind": "ModelEndpoint", "namespace": null, "name": "llm"}, "resource.namespace must be a string")
	_resource_rejected({"kind": "ModelEndpoint", "namespace": ["models"], "name": "llm"}, "resource.namespace must be a string")
}

test_missing_subject if {
	_rejected({"resource": _llm_resource, "action": "invoke"}, "subject is required")
	_rejected({"subject": false, "resource": _llm_resource, "action": "invoke"}, "subject is required")
}

test_subject_not_an_object if {
	_rejected({"subject": "team-b/nb-sa", "resource": _llm_resource, "action": "invoke"}, "subject must be an object")
	_rejected({"subject": ["team-b", "nb-sa"], "resource": _llm_resource, "action": "invoke"}, "subject must be an object")
	_rejected({"subject": null, "resource": _llm_resource, "action": "invoke"}, "subject must be an object")
}

test_input_not_an_object if {
	_rejected("team-b/nb-sa", "subject is required")
	_rejected([_audit_subject, _llm_resource], "subject is required")
}

test_subject_namespace_of_wrong_type if {
	_subject_rejected({"namespace": 5}, "subject.namespace must be a string")
	_subject_rejected({"namespace": null}, "subject.namespace must be a string")
	_subject_rejected({"namespace": ["team-b"]}, "subject.namespace must be a string")
}

test_service_account_of_wrong_type if {
	_subject_rejected({"serviceAccount": 5}, "subject.serviceAccount must be a string")
	_subject_rejected({"serviceAccount": null}, "subject.serviceAccount must be a string")
	_subject_rejected({"serviceAccount": false}, "subject.serviceAccount must be a string")
	_subject_rejected({"serviceAccount": ["nb-sa"]}, "subject.serviceAccount must be a string")
}

test_named_workload_of_wrong_type if {
	_rejected(
		{"subject": {"namespace": "team-a", "workload": ["agent"]}, "resource": _llm_resource},
		"subject.workload must be a string",
	)
	_rejected(
		{"subject": {"namespace": "team-b", "workload": {"name": "notebook"}}, "resource": _llm_resource},
		"subject.workload must be a string",
	)
	_subject_rejected({"workload": null}, "subject.workload must be a string")
}

test_spiffe_id_of_wrong_type if {
	_rejected({"subject": {"spiffeId": 5}, "resource": _llm_resource}, "subject.spiffeId must be a string")
	_rejected(
		{"subject": {"spiffeId": ["spiffe://td/ns/team-b/sa/nb-sa"]}, "resource": _llm_resource},
		"subject.spiffeId must be a string",
	)
	_subject_rejected({"spiffeId": null}, "subject.spiffeId must be a string")
}

test_several_malformed_fields_report_the_first if {
	# one reason, not a conflict between several
	_rejected(
		{"subject": {"namespace": 1, "serviceAccount": 2, "workload": 3}, "resource": {"kind": 4, "namespace": 5, "name": 6}},
		"subject.namespace must be a string",
	)
	_resource_rejected({"kind": 4, "namespace": 5, "name": 6}, "resource.namespace must be a string")
}

test_malformed_input_is_not_excused_for_a_quarantined_workload_in_enforce_mode if {
	_rejected(
		{"subject": {"namespace": "team-a", "serviceAccount": "jailed-sa"}, "resource": {"name": "llm"}},
		_kind_reason,
	)
}

test_empty_optional_fields_count_as_absent if {
	# well-formed: "" means not given, as before
	d := _decide({"namespace": "team-a", "workload": "trainer", "serviceAccount": ""}, _llm_resource)
	d.allow == true
	d.workloads == ["trainer"]
	_decide({"namespace": "team-a", "serviceAccount": "agent-sa", "workload": ""}, _llm_resource).workloads == ["agent"]
	_decide({"namespace": "team-a", "serviceAccount": "agent-sa"}, {"kind": "ModelEndpoint", "namespace": "", "name": "local"}).allow == true
}

test_named_workload_without_service_account_list_rejects_a_claimed_one if {
	broken := {"team-a": {"trainer": {"tier": "trusted", "score": 91, "mode": "enforce", "grants": {}}}}
	d := authz.decision with input as {"subject": {"namespace": "team-a", "workload": "trainer", "serviceAccount": "agent-sa"}, "resource": _llm_resource, "action": "invoke"}
		with data.aitrust_data.workloads as broken
		with data.aitrust_data.subjects as _subjects
	d.allow == false
	d.reason == "service account agent-sa is not used by workload team-a/trainer"
}

# --- actions ----------------------------------------------------------------------

_decide_action(subject, resource, action) := d if {
	d := authz.decision with input as {"subject": subject, "resource": resource, "action": action}
		with data.aitrust_data.workloads as _workloads
		with data.aitrust_data.subjects as _subjects
}

# trainer is trusted; agent is restricted, and both are granted these DataSources.
_store := "DataSource/data/store"

_store_resource := {"kind": "DataSource", "namespace": "data", "name": "store"}

_granted_store := {"allowed": true, "reason": "tier restricted meets minTier restricted"}

_with_store := {
	"team-a": {
		"agent": object.union(_workloads["team-a"].agent, {"grants": {_store: _granted_store}}),
		"trainer": object.union(_workloads["team-a"].trainer, {"grants": {_store: _granted_store}}),
	},
	"team-b": {"notebook": {
		"tier": "restricted", "score": 60, "mode": "audit", "serviceAccounts": ["nb-sa"],
		"grants": {_store: _granted_store},
	}},
}

_store_decision(subject, action) := d if {
	d := authz.decision with input as {"subject": subject, "resource": _store_resource, "action": action}
		with data.aitrust_data.workloads as _with_store
		with data.aitrust_data.subjects as _subjects
}

test_trusted_workload_may_read_and_write_a_granted_data_source if {
	read := _store_decision({"namespace": "team-a", "workload": "trainer"}, "read")
	read.allow == true
	write := _store_decision({"namespace": "team-a", "workload": "trainer"}, "write")
	write.allow == true
	write.reason == "tier restricted meets minTier restricted"
	write.tier == "trusted"
}

test_restricted_workload_may_only_read_a_granted_data_source if {
	read := _store_decision({"namespace": "team-a", "workload": "agent"}, "read")
	read.allow == true
	write := _store_decision({"namespace": "team-a", "workload": "agent"}, "write")
	write.allow == false
	write.reason == "tier restricted may only read DataSource/data/store; write needs tier trusted"
	write.tier == "restricted"
	write.mode == "enforce"
}

test_audit_mode_reports_a_write_it_would_deny if {
	d := _store_decision({"namespace": "team-b", "workload": "notebook"}, "write")
	d.allow == true
	d.reason == "audit mode, would deny: tier restricted may only read DataSource/data/store; write needs tier trusted"
	d.mode == "audit"
}

test_a_denied_grant_keeps_its_reason_for_a_write if {
	d := _decide_action({"namespace": "team-a", "workload": "agent"}, _pii_resource, "write")
	d.allow == false
	d.reason == "tier restricted is below minTier trusted"
}

test_a_quarantined_workload_is_denied_every_action if {
	d := _decide_action({"namespace": "team-a", "workload": "jailed"}, _llm_resource, "invoke")
	d.allow == false
	d.reason == "workload is quarantined"
}

test_unknown_action_is_denied_naming_it_in_both_modes if {
	_rejected(
		{"subject": _enforce_subject, "resource": _llm_resource, "action": "delete"},
		`action "delete" is not allowed on a ModelEndpoint (allowed: invoke)`,
	)
	_rejected(
		{"subject": _audit_subject, "resource": _pii_resource, "action": "invoke"},
		`action "invoke" is not allowed on a DataSource (allowed: read, write)`,
	)
	_rejected(
		{"subject": _enforce_subject, "resource": _llm_resource, "action": "read"},
		`action "read" is not allowed on a ModelEndpoint (allowed: invoke)`,
	)
	_rejected(
		{"subject": _enforce_subject, "resource": _llm_resource, "action": ""},
		`action "" is not allowed on a ModelEndpoint (allowed: invoke)`,
	)
}

test_missing_or_malformed_action_is_denied if {
	_rejected({"subject": _enforce_subject, "resource": _llm_resource}, "action is required")
	_rejected({"subject": _audit_subject, "resource": _llm_resource}, "action is required")
	_rejected({"subject": _enforce_subject, "resource": _llm_resource, "action": 5}, "action must be a string")
	_rejected({"subject": _enforce_subject, "resource": _llm_resource, "action": ["invoke"]}, "action must be a string")
	_rejected({"subject": _audit_subject, "resource": _llm_resource, "action": null}, "action must be a string")
}

test_write_by_a_shared_service_account_needs_every_workload_trusted if {
	d := authz.decision with input as {"subject": {"namespace": "team-a", "serviceAccount": "shared"}, "resource": _store_resource, "action": "write"}
		with data.aitrust_data.workloads as _with_store
		with data.aitrust_data.subjects as _subjects
	d.allow == false
	startswith(d.reason, "ambiguous: workloads using service account team-a/shared get different answers")
	contains(d.reason, "agent: tier restricted may only read DataSource/data/store")
}

# Answers: may this subject use this ModelEndpoint or DataSource for this action now?
#
# Input:  {"subject": {"namespace", "serviceAccount"?, "workload"?, "spiffeId"?},
#          "resource": {"kind": "ModelEndpoint"|"DataSource", "namespace"?, "name"}, "action"}
# Data:   data.aitrust_data.workloads[ns][name] = {tier, score, mode, grants, serviceAccounts}
#         data.aitrust_data.subjects[ns][serviceAccount] = [workload names]
#         Every field is a string; "" counts as absent for the optional subject fields and
#         resource.namespace. Malformed input (a missing or non-object subject or resource, a
#         non-string field, an unknown kind, no name) is denied with a reason naming the field,
#         in every mode.
# Output: decision = {allow, reason, tier, score, mode, workloads}, and allow.
#
# Actions. The CRDs grant access per target (AIWorkload.spec.access lists ModelEndpoints to
# call and DataSources to read or write), so the action vocabulary is per kind:
#   ModelEndpoint: "invoke"
#   DataSource:    "read", "write"
# Any other action (or none) is malformed input, denied in every mode with a reason naming it.
# A grant admits every action of its kind, with one tier rule on top: writing to a DataSource
# changes what other workloads (and models trained on it) see, so it needs tier trusted; a
# restricted workload granted a DataSource may only read it. Audit mode reports that denial as
# "would deny", like the others.
#
# Cost: every request is answered by keyed lookups (workloads[ns][name], subjects[ns][sa],
# grants[target]); nothing iterates the estate. What remains is OPA's per-rule and per-call
# overhead, so the hot path keeps rule evaluations and function calls few.
package aitrust.authz

default allow := false

allow := decision.allow

default decision := {
	"allow": false,
	"reason": "no decision",
	"tier": null,
	"score": null,
	"mode": null,
	"workloads": [],
}

decision := _deny(msg, []) if {
	msg := _input_error
} else := object.union(v, {"workloads": [name]}) if {
	count(_candidates) == 1
	some name in _candidates
	v := _verdict(name)
} else := _combined

_kinds := {"ModelEndpoint", "DataSource"}

_actions := {"ModelEndpoint": {"invoke"}, "DataSource": {"read", "write"}}

_rank := {"quarantined": 0, "restricted": 1, "trusted": 2}

# --- subject ----------------------------------------------------------------------

# spiffe://<trust-domain>/ns/<namespace>/sa/<service account>
_spiffe := {"namespace": m[1], "serviceAccount": m[2]} if {
	m := regex.find_all_string_submatch_n(`^spiffe://[^/]+/ns/([^/]+)/sa/([^/]+)$`, input.subject.spiffeId, 1)[0]
}

_namespace := input.subject.namespace if {
	input.subject.namespace != ""
} else := _spiffe.namespace

_service_account := input.subject.serviceAccount if {
	input.subject.serviceAccount != ""
} else := _spiffe.serviceAccount

_workload_named if input.subject.workload != ""

_candidates := {input.subject.workload} if {
	_workload_named
} else := {name | some name in data.aitrust_data.subjects[_namespace][_service_account]}

# --- resource ---------------------------------------------------------------------

_resource_namespace := input.resource.namespace if {
	input.resource.namespace != ""
} else := _namespace

_name_given if input.resource.name != ""

_target := sprintf("%s/%s/%s", [input.resource.kind, _resource_namespace, input.resource.name])

# --- validation, first failure wins ------------------------------------------------
#
# Beware `not f(input.x)` and `not input.x in s`: OPA evaluates the argument outside the
# negation, so an undefined (missing) field makes the whole expression undefined and the
# check silently passes. Test presence first, or negate a helper rule (as _kind_ok).

_kind_ok if input.resource.kind in _kinds

_action_ok if input.action in _actions[input.resource.kind]

_input_error := "subject is required" if {
	not input.subject
} else := "subject must be an object" if {
	not is_object(input.subject)
} else := "resource is required" if {
	not input.resource
} else := "resource must be an object" if {
	not is_object(input.resource)
} else := "subject.namespace must be a string" if {
	x := input.subject.namespace
	not is_string(x)
} else := "subject.serviceAccount must be a string" if {
	x := input.subject.serviceAccount
	not is_string(x)
} else := "subject.workload must be a string" if {
	x := input.subject.workload
	not is_string(x)
} else := "subject.spiffeId must be a string" if {
	x := input.subject.spiffeId
	not is_string(x)
} else := "resource.namespace must be a string" if {
	x := input.resource.namespace
	not is_string(x)
} else := "resource.name must be a string" if {
	x := input.resource.name
	not is_string(x)
} else := "spiffeId is not spiffe://<trust-domain>/ns/<namespace>/sa/<serviceAccount>" if {
	input.subject.spiffeId
	not _spiffe
} else := "subject.namespace does not match the SPIFFE id" if {
	_spiffe.namespace != _namespace
} else := "subject has no namespace" if {
	not _namespace
} else := "resource.kind must be ModelEndpoint or DataSource" if {
	not _kind_ok
} else := "resource.name is required" if {
	not _name_given
} else := "action is required" if {
	not input.action
} else := "action must be a string" if {
	not is_string(input.action)
} else := sprintf("action %q is not allowed on a %s (allowed: %s)", [
	input.action, input.resource.kind,
	concat(", ", sort(_actions[input.resource.kind])),
]) if {
	not _action_ok
} else := "subject names no workload, serviceAccount or spiffeId" if {
	not _workload_named
	not _service_account
} else := sprintf("unknown subject: service account %s/%s is used by no AIWorkload", [_namespace, _service_account]) if {
	count(_candidates) == 0
}

# --- one workload -----------------------------------------------------------------

_verdicts := {name: _verdict(name) | some name in _candidates}

# One workload's answer. Identity problems always deny; audit mode only relaxes trust decisions.
# Each clause looks the document up by key again: cheaper in OPA than passing it to a helper
# function (whose arguments OPA hashes), and every lookup is O(1) whatever the estate's size.
_verdict(name) := _deny(sprintf("unknown subject: workload %s/%s is not managed by aitrust", [_namespace, name]), null) if {
	not data.aitrust_data.workloads[_namespace][name]
} else := _deny(sprintf("service account %s is not used by workload %s/%s", [_service_account, _namespace, name]), null) if {
	_workload_named
	sa := _service_account
	not sa in object.get(data.aitrust_data.workloads[_namespace][name], "serviceAccounts", [])
} else := {
	"allow": audit,
	"reason": _quarantined_reason[audit],
	"tier": wl.tier,
	"score": wl.score,
	"mode": wl.mode,
} if {
	wl := data.aitrust_data.workloads[_namespace][name]
	wl.tier == "quarantined"
	audit := wl.mode == "audit"
} else := {"allow": a[0], "reason": a[1], "tier": wl.tier, "score": wl.score, "mode": wl.mode} if {
	wl := data.aitrust_data.workloads[_namespace][name]
	a := _access(wl.mode, wl.tier, object.get(wl, ["grants", _target], false))
}

_quarantined_reason := {true: "audit mode, would deny: workload is quarantined", false: "workload is quarantined"}

# [allow, reason] for a workload that is not quarantined, from its mode, its tier and its grant
# for the target (false: none). Scalars and the small grant only: cheap arguments to hash.
_access(mode, tier, grant) := [true, sprintf("audit mode, would deny: workload has no grant for %s", [_target])] if {
	not grant
	mode == "audit"
} else := [false, sprintf("workload has no grant for %s", [_target])] if {
	not grant
} else := [true, sprintf("audit mode, would deny: %s", [grant.reason])] if {
	grant.allowed != true
	mode == "audit"
} else := [true, sprintf("audit mode, would deny: %s", [_write_reason(tier)])] if {
	grant.allowed == true
	_write_denied(tier)
	mode == "audit"
} else := [false, _write_reason(tier)] if {
	grant.allowed == true
	_write_denied(tier)
} else := [grant.allowed == true, grant.reason]

_write_denied(tier) if {
	input.action == "write"
	tier != "trusted"
}

_write_reason(tier) := sprintf("tier %s may only read %s; write needs tier trusted", [tier, _target])

_deny(reason, names) := {
	"allow": false,
	"reason": reason,
	"tier": null,
	"score": null,
	"mode": null,
	"workloads": names,
}

# --- several workloads share the service account: allow only if all allow ---------

_combined := {
	"allow": allowed,
	"reason": reason,
	"tier": _lowest_tier,
	"score": min({v.score | some v in _verdicts}),
	"mode": _common_mode,
	"workloads": sort(_candidates),
} if {
	count(_candidates) > 1
	allowed := _every_allow
	reason := _combined_reason
}

default _every_allow := false

_every_allow if {
	every v in _verdicts {
		v.allow
	}
}

_combined_reason := sprintf("allowed for every workload using service account %s/%s", [_namespace, _service_account]) if {
	_every_allow
} else := sprintf("ambiguous: workloads using service account %s/%s get different answers: %s", [
	_namespace, _service_account, _summary,
]) if {
	some v in _verdicts
	v.allow
} else := sprintf("denied for every workload using service account %s/%s: %s", [
	_namespace, _service_account, _summary,
])

_summary := concat("; ", sort([sprintf("%s: %s", [name, v.reason]) | some name, v in _verdicts]))

_lowest_tier := tier if {
	ranks := {_rank[v.tier] | some v in _verdicts}
	some tier, r in _rank
	r == min(ranks)
} else := null

_common_mode := mode if {
	modes := {v.mode | some v in _verdicts}
	count(modes) == 1
	some mode in modes
} else := "mixed"

#!/usr/bin/env bash
# Checks the Rego under policies/: formatting, strict compile, unit tests and a coverage floor.
# Env: OPA (binary; default from hack/testbin.sh), AITRUST_OPA_COVERAGE_MIN (percent, default 90).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
POLICIES=${POLICIES:-$ROOT/policies}
OPA=${OPA:-$(bash "$ROOT/hack/testbin.sh" --print-dir)/opa}
MIN=${AITRUST_OPA_COVERAGE_MIN:-90}

if [[ ! -x "$OPA" ]]; then
  echo "opa-check: no opa binary at $OPA (run: TESTBIN_ONLY=opa bash hack/testbin.sh)" >&2
  exit 2
fi

echo "opa-check: $("$OPA" version | head -n1) on $POLICIES"

unformatted=$("$OPA" fmt --list "$POLICIES")
if [[ -n "$unformatted" ]]; then
  echo "opa-check: not formatted (run: opa fmt -w policies/):" >&2
  echo "$unformatted" >&2
  exit 1
fi

"$OPA" check --strict "$POLICIES"
"$OPA" test "$POLICIES" -v

report=$(mktemp); trap 'rm -f "$report"' EXIT
"$OPA" test "$POLICIES" --coverage --format=json > "$report"
python3 - "$report" "$MIN" <<'PY'
import json, sys

report, minimum = json.load(open(sys.argv[1])), float(sys.argv[2])
failed = False
for path, info in sorted(report.get("files", {}).items()):
    if path.endswith("_test.rego"):
        continue  # tests cover themselves; the floor is for the policy
    pct = float(info.get("coverage", 0.0))
    ok = pct >= minimum
    failed |= not ok
    rows = sorted({r["start"]["row"] for r in info.get("not_covered") or []})
    print(f"opa-check: coverage {pct:.1f}% {'>=' if ok else '<'} {minimum:g}% {path} uncovered rows {rows}")
if not report.get("files"):
    print("opa-check: coverage report lists no files", file=sys.stderr)
    failed = True
sys.exit(1 if failed else 0)
PY
echo "opa-check: ok"

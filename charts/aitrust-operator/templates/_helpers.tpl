{{/* Chart name, truncated to the 63 characters of a label value. */}}
{{- define "aitrust.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-scoped name for namespaced and cluster-scoped objects. */}}
{{- define "aitrust.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "aitrust.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "aitrust.selectorLabels" -}}
app.kubernetes.io/name: {{ include "aitrust.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "aitrust.labels" -}}
helm.sh/chart: {{ include "aitrust.chart" . }}
{{ include "aitrust.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: aitrust
app.kubernetes.io/component: operator
{{- end -}}

{{- define "aitrust.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "aitrust.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* repository:tag, or repository@digest when a digest pins the image. */}}
{{- define "aitrust.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "aitrust.secretsNamespace" -}}
{{- default .Release.Namespace .Values.secretsNamespace -}}
{{- end -}}

{{/* Namespaces that get the chart's default TrustPolicy. */}}
{{- define "aitrust.trustPolicyNamespaces" -}}
{{- $ns := .Values.trustPolicy.namespaces | default .Values.watchNamespaces -}}
{{- toJson (uniq $ns) -}}
{{- end -}}

{{- define "aitrust.signalsTLSSecret" -}}
{{- default (printf "%s-signals-tls" (include "aitrust.fullname" .)) .Values.signals.tls.existingSecret -}}
{{- end -}}

{{- define "aitrust.signalsAuthSecret" -}}
{{- default (printf "%s-signals-auth" (include "aitrust.fullname" .)) .Values.signals.auth.existingSecret -}}
{{- end -}}

{{- define "aitrust.signalsAuthEnabled" -}}
{{- if or .Values.signals.auth.existingSecret .Values.signals.auth.create -}}true{{- end -}}
{{- end -}}

{{/* The checks every install must pass; included by the Deployment. */}}
{{- define "aitrust.validate" -}}
{{- if and .Values.signals.enabled (not (include "aitrust.signalsAuthEnabled" .)) (not .Values.signals.mtls.clientCASecret) -}}
{{- fail "signals need bearer tokens (signals.auth.existingSecret or signals.auth.create) or mTLS (signals.mtls.clientCASecret)" -}}
{{- end -}}
{{- if and .Values.signals.enabled .Values.signals.mtls.clientCASecret (not .Values.signals.tls.enabled) -}}
{{- fail "signals.mtls needs signals.tls.enabled" -}}
{{- end -}}
{{- if and .Values.opa.bundle.enabled (not .Values.opa.bundle.signingKey.existingSecret) -}}
{{- fail "opa.bundle.enabled needs opa.bundle.signingKey.existingSecret: aitrust serves signed bundles only" -}}
{{- end -}}
{{- if and .Values.pdb.enabled (gt (int .Values.replicas) 1) (not (kindIs "string" .Values.pdb.minAvailable)) (ge (int .Values.pdb.minAvailable) (int .Values.replicas)) -}}
{{- fail (printf "pdb.minAvailable (%d) must be below replicas (%d): otherwise no replica may ever be evicted and node drains block" (int .Values.pdb.minAvailable) (int .Values.replicas)) -}}
{{- end -}}
{{- if and .Values.pdb.enabled (gt (int .Values.replicas) 1) (kindIs "string" .Values.pdb.minAvailable) (ge (int (trimSuffix "%" (toString .Values.pdb.minAvailable))) 100) -}}
{{- fail (printf "pdb.minAvailable (%s) must be below 100%%: otherwise no replica may ever be evicted and node drains block" .Values.pdb.minAvailable) -}}
{{- end -}}
{{- if and (gt (int .Values.replicas) 1) (not .Values.leaderElection.enabled) -}}
{{- fail "replicas > 1 needs leaderElection.enabled: replicas would reconcile, enforce and take signals concurrently (kopf peering pauses only kopf's own handlers)" -}}
{{- end -}}
{{- $ports := dict -}}
{{- range $name, $port := dict "health" .Values.health.port "signals" (ternary .Values.signals.port 0 .Values.signals.enabled) "metrics" (ternary .Values.metrics.port 0 .Values.metrics.enabled) "opa-bundle" (ternary .Values.opa.bundle.port 0 .Values.opa.bundle.enabled) -}}
{{- if $port -}}
{{- $key := toString $port -}}
{{- if hasKey $ports $key -}}
{{- fail (printf "port %s is used by both %s and %s" $key (get $ports $key) $name) -}}
{{- end -}}
{{- $_ := set $ports $key $name -}}
{{- end -}}
{{- end -}}
{{- end -}}

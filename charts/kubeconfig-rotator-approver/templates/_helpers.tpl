{{/* Chart name, truncated to the 63 characters a label allows. */}}
{{- define "kubeconfig-rotator-approver.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-scoped name for the chart's objects. */}}
{{- define "kubeconfig-rotator-approver.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "kubeconfig-rotator-approver.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kubeconfig-rotator-approver.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubeconfig-rotator-approver.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kubeconfig-rotator-approver.labels" -}}
helm.sh/chart: {{ include "kubeconfig-rotator-approver.chart" . }}
{{ include "kubeconfig-rotator-approver.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kubeconfig-rotator
{{- end }}

{{- define "kubeconfig-rotator-approver.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kubeconfig-rotator-approver.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kubeconfig-rotator-approver.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The bootstrap group of a source cluster, as kubeconfig-rotator bootstrap names it. */}}
{{- define "kubeconfig-rotator-approver.bootstrapGroup" -}}
system:bootstrappers:kubeconfig-rotator:{{ . }}
{{- end }}

{{/* The policy file, from the values: one policy per source cluster, named after it. */}}
{{- define "kubeconfig-rotator-approver.policy" -}}
{{- $policies := list }}
{{- range $index, $source := .Values.sources }}
{{- range $field := list "commonNames" "organizations" }}
{{- range (get $source.identity $field | default list) }}
{{- if hasPrefix "system:" . }}
{{- fail (printf "sources[%d].identity.%s: %q starts with \"system:\": system identities are never approved" $index $field .) }}
{{- end }}
{{- end }}
{{- end }}
{{- /* The approver itself refuses to start there (src/approver/versions.ts); say so at install instead. */}}
{{- if and (eq (toString (dig "renewal" true $source)) "true") (semverCompare "<1.32.0-0" $.Capabilities.KubeVersion.Version) }}
{{- fail (printf "sources[%d] (%s).renewal: true (the default) needs Kubernetes 1.32 or later, which records the certificate a renewal was made with (authentication.kubernetes.io/credential-id); this cluster is %s, where the approver would deny every renewal and refuse to start: set renewal: trustUsername (weaker, see docs/approver.md) or renewal: false" $index $source.name $.Capabilities.KubeVersion.Version) }}
{{- end }}
{{- with $source }}
{{- $bootstrap := dict "groups" (prepend (dig "bootstrap" "groups" (list) .) (include "kubeconfig-rotator-approver.bootstrapGroup" .name)) "users" (dig "bootstrap" "users" (list) .) }}
{{- $policy := omit . "clusterRoles" "roleBindings" "bootstrap" "rbacSubjects" }}
{{- $_ := set $policy "bootstrap" $bootstrap }}
{{- $policies = append $policies $policy }}
{{- end }}
{{- end }}
{{- toYaml (dict "signerName" .Values.signerName "denyUnmatched" .Values.denyUnmatched "policies" $policies) }}
{{- end }}

{{/*
The RBAC subjects of a source's identity: its exact common names as users (patterns cannot be bound), or its
organizations as groups.
*/}}
{{- define "kubeconfig-rotator-approver.identitySubjects" -}}
{{- if eq (default "commonNames" .rbacSubjects) "organizations" }}
{{- range .identity.organizations }}
- { apiGroup: rbac.authorization.k8s.io, kind: Group, name: {{ . | quote }} }
{{- end }}
{{- else }}
{{- range .identity.commonNames }}
{{- if not (contains "*" .) }}
- { apiGroup: rbac.authorization.k8s.io, kind: User, name: {{ . | quote }} }
{{- end }}
{{- end }}
{{- end }}
{{- end }}

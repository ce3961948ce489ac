{{/* Chart name, truncated to the 63 characters a label allows. */}}
{{- define "kubeconfig-rotator-sidecar.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Release-scoped name for the chart's objects. */}}
{{- define "kubeconfig-rotator-sidecar.fullname" -}}
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

{{- define "kubeconfig-rotator-sidecar.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kubeconfig-rotator-sidecar.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kubeconfig-rotator-sidecar.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The standalone Deployment's pods, as its selector, its Service and its ServiceMonitor pick them: the component
label keeps them apart from the injector's pods (component: injector), which share name and instance.
*/}}
{{- define "kubeconfig-rotator-sidecar.standaloneSelectorLabels" -}}
{{ include "kubeconfig-rotator-sidecar.selectorLabels" . }}
app.kubernetes.io/component: sidecar
{{- end }}

{{- define "kubeconfig-rotator-sidecar.labels" -}}
helm.sh/chart: {{ include "kubeconfig-rotator-sidecar.chart" . }}
{{ include "kubeconfig-rotator-sidecar.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kubeconfig-rotator
{{- end }}

{{/* The ServiceAccount the sidecar runs as: the chart's own (standalone) or the agent's (sidecar mode). */}}
{{- define "kubeconfig-rotator-sidecar.serviceAccountName" -}}
{{- if eq .Values.mode "sidecar" }}
{{- .Values.agentServiceAccountName }}
{{- else if .Values.serviceAccount.create }}
{{- default (include "kubeconfig-rotator-sidecar.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kubeconfig-rotator-sidecar.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* Where things are inside the container. */}}
{{- define "kubeconfig-rotator-sidecar.configDir" -}}/etc/kubeconfig-rotator{{- end }}
{{- define "kubeconfig-rotator-sidecar.bootstrapDir" -}}/var/run/kubeconfig-rotator/bootstrap{{- end }}
{{- define "kubeconfig-rotator-sidecar.stateDir" -}}/var/lib/kubeconfig-rotator{{- end }}

{{/*
The sidecar's config file, from the values: each target's bootstrap Secret becomes a mounted file, a
directory sink without a path publishes under outputPath/<target>, a Secret sink or a workload to
restart without a namespace is in the release namespace.
*/}}
{{- define "kubeconfig-rotator-sidecar.config" -}}
{{- $root := . }}
{{- $targets := list }}
{{- range .Values.targets }}
{{- $target := omit . "bootstrapSecret" "sinks" }}
{{- $_ := set $target "bootstrapKubeconfig" (printf "%s/%s/%s" (include "kubeconfig-rotator-sidecar.bootstrapDir" $root) .name (default "kubeconfig" .bootstrapSecret.key)) }}
{{- $sinks := dict }}
{{- /* hasKey, not with: `directory: {}` is an empty dict, which with would skip. */}}
{{- if hasKey .sinks "directory" }}
{{- $directory := .sinks.directory | default dict }}
{{- $_ := set $sinks "directory" (dict "path" (default (printf "%s/%s" $root.Values.outputPath $target.name) $directory.path) "embed" (default false $directory.embed)) }}
{{- end }}
{{- with .sinks.secret }}
{{- $_ := set $sinks "secret" (merge (dict "namespace" (default $root.Release.Namespace .namespace)) (omit . "namespace")) }}
{{- end }}
{{- $_ := set $target "sinks" $sinks }}
{{- $restart := list }}
{{- range .restart }}
{{- $restart = append $restart (merge (dict "namespace" (default $root.Release.Namespace .namespace)) (omit . "namespace")) }}
{{- end }}
{{- $_ := set $target "restart" $restart }}
{{- $targets = append $targets $target }}
{{- end }}
{{- $profiles := dict "namespace" (include "kubeconfig-rotator-sidecar.clusterProfileNamespace" .) "allTargets" .Values.clusterProfiles.allTargets "healthCheckSeconds" .Values.clusterProfiles.healthCheckSeconds }}
{{- $config := dict "targets" $targets "stateDir" (include "kubeconfig-rotator-sidecar.stateDir" .) "listen" (dict "host" "0.0.0.0" "port" .Values.config.port) "logLevel" .Values.config.logLevel "rereadIntervalSeconds" .Values.config.rereadIntervalSeconds "clusterProfiles" $profiles }}
{{- toYaml $config }}
{{- end }}

{{/* The targets' default ClusterProfile namespace: clusterProfiles.namespace, else the release's. */}}
{{- define "kubeconfig-rotator-sidecar.clusterProfileNamespace" -}}
{{- default .Release.Namespace .Values.clusterProfiles.namespace }}
{{- end }}

{{/* The ClusterProfiles the sidecar keeps: namespace -> names (as clusterProfileOf in src/core/config/sidecar.ts). */}}
{{- define "kubeconfig-rotator-sidecar.clusterProfiles" -}}
{{- $root := . }}
{{- $profiles := dict }}
{{- range .Values.targets }}
{{- if or .clusterProfile $root.Values.clusterProfiles.allTargets }}
{{- $own := .clusterProfile | default dict }}
{{- $namespace := default (include "kubeconfig-rotator-sidecar.clusterProfileNamespace" $root) $own.namespace }}
{{- $_ := set $profiles $namespace (append (get $profiles $namespace | default list) (default .name $own.name) | uniq | sortAlpha) }}
{{- end }}
{{- end }}
{{- toJson $profiles }}
{{- end }}

{{/* Namespaces the Secret sinks write to. */}}
{{- define "kubeconfig-rotator-sidecar.secretNamespaces" -}}
{{- $root := . }}
{{- $namespaces := dict }}
{{- range .Values.targets }}
{{- with .sinks.secret }}
{{- $_ := set $namespaces (default $root.Release.Namespace .namespace) true }}
{{- end }}
{{- end }}
{{- keys $namespaces | sortAlpha | join "," }}
{{- end }}

{{/* The restart action's workloads: namespace -> resource (deployments...) -> names. */}}
{{- define "kubeconfig-rotator-sidecar.restartWorkloads" -}}
{{- $root := . }}
{{- $restarts := dict }}
{{- range .Values.targets }}
{{- range .restart }}
{{- $namespace := default $root.Release.Namespace .namespace }}
{{- $byResource := get $restarts $namespace | default (dict) }}
{{- $resource := printf "%ss" (lower .kind) }}
{{- $_ := set $byResource $resource (append (get $byResource $resource | default (list)) .name | uniq | sortAlpha) }}
{{- $_ := set $restarts $namespace $byResource }}
{{- end }}
{{- end }}
{{- toJson $restarts }}
{{- end }}

{{- define "kubeconfig-rotator-sidecar.injectorName" -}}
{{- printf "%s-injector" (include "kubeconfig-rotator-sidecar.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kubeconfig-rotator-sidecar.injectorSelectorLabels" -}}
{{ include "kubeconfig-rotator-sidecar.selectorLabels" . }}
app.kubernetes.io/component: injector
{{- end }}

{{/* The injector's config: the chart's targets as the catalog pods pick from by annotation. */}}
{{- define "kubeconfig-rotator-sidecar.injectorConfig" -}}
{{- $targets := list }}
{{- range .Values.targets }}
{{- /* Injected pods share the directory: they need no restart action. */}}
{{- $target := omit . "sinks" "restart" "clusterProfile" }}
{{- $_ := set $target "embed" (and .sinks .sinks.directory .sinks.directory.embed | default false) }}
{{- $targets = append $targets $target }}
{{- end }}
{{- $name := include "kubeconfig-rotator-sidecar.injectorName" . }}
{{- $tls := dict "mode" "files" "certFile" "/etc/kubeconfig-rotator-injector/tls/tls.crt" "keyFile" "/etc/kubeconfig-rotator-injector/tls/tls.key" }}
{{- if eq .Values.injector.certificates.mode "self-managed" }}
{{- $tls = dict "mode" "self-managed" "secret" (dict "namespace" .Release.Namespace "name" (printf "%s-ca" $name)) "webhookConfiguration" $name "dnsNames" (list (printf "%s.%s.svc" $name .Release.Namespace)) "servingLifetimeSeconds" .Values.injector.certificates.servingLifetimeSeconds }}
{{- end }}
{{- $sidecar := dict "image" (include "kubeconfig-rotator-sidecar.image" .) "imagePullPolicy" .Values.image.pullPolicy "port" .Values.config.port "outputPath" .Values.outputPath "logLevel" .Values.config.logLevel "startupTimeoutSeconds" .Values.startupTimeoutSeconds "resources" .Values.resources "securityContext" .Values.securityContext }}
{{- toYaml (dict "listen" (dict "port" 8443) "probes" (dict "port" 8080) "tls" $tls "sidecar" $sidecar "targets" $targets "profiles" .Values.injector.profiles "logLevel" .Values.config.logLevel) }}
{{- end }}

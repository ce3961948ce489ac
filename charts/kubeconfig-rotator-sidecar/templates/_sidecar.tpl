{{/*
The sidecar container. Shared by the standalone Deployment and by the native-sidecar template below.
Call with this chart's context.
*/}}
{{- define "kubeconfig-rotator-sidecar.container" -}}
name: kubeconfig-rotator
image: {{ include "kubeconfig-rotator-sidecar.image" . | quote }}
imagePullPolicy: {{ .Values.image.pullPolicy }}
args:
  - sidecar
  - --config
  - "{{ include "kubeconfig-rotator-sidecar.configDir" . }}/config.yaml"
  {{- with .Values.extraArgs }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
env:
  - { name: POD_NAME, valueFrom: { fieldRef: { fieldPath: metadata.name } } }
  - { name: POD_NAMESPACE, valueFrom: { fieldRef: { fieldPath: metadata.namespace } } }
  # Federated targets and certificate targets with federated bootstrap: tokens of the pod's own ServiceAccount,
  # bound to the pod.
  - { name: POD_UID, valueFrom: { fieldRef: { fieldPath: metadata.uid } } }
  - { name: POD_SERVICE_ACCOUNT, valueFrom: { fieldRef: { fieldPath: spec.serviceAccountName } } }
  {{- with .Values.extraEnv }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
ports:
  - { name: http-metrics, containerPort: {{ .Values.config.port }}, protocol: TCP }
readinessProbe:
  httpGet: { path: /readyz, port: http-metrics }
  periodSeconds: 10
livenessProbe:
  httpGet: { path: /healthz, port: http-metrics }
  periodSeconds: 20
  failureThreshold: 3
securityContext:
  {{- toYaml .Values.securityContext | nindent 2 }}
resources:
  {{- toYaml .Values.resources | nindent 2 }}
volumeMounts:
  - { name: kubeconfig-rotator-config, mountPath: {{ include "kubeconfig-rotator-sidecar.configDir" . }}, readOnly: true }
  - { name: kubeconfig-rotator-state, mountPath: {{ include "kubeconfig-rotator-sidecar.stateDir" . }} }
  - { name: {{ .Values.outputVolumeName }}, mountPath: {{ .Values.outputPath }} }
  {{- range .Values.targets }}
  - name: kubeconfig-rotator-bootstrap-{{ .name }}
    mountPath: {{ include "kubeconfig-rotator-sidecar.bootstrapDir" $ }}/{{ .name }}
    readOnly: true
  {{- end }}
{{- end }}

{{/*
kubeconfig-rotator-sidecar.initContainer: the native sidecar (Kubernetes >= 1.29), to put first under
another pod's initContainers. restartPolicy Always keeps it running beside the agent; the startup probe on
/readyz holds the agent back until every kubeconfig exists. Call with this chart's context, from the
parent chart that depends on it:

  initContainers:
    {{- include "kubeconfig-rotator-sidecar.initContainer" (index .Subcharts "kubeconfig-rotator-sidecar") | nindent 4 }}
*/}}
{{- define "kubeconfig-rotator-sidecar.initContainer" -}}
- {{- include "kubeconfig-rotator-sidecar.container" . | nindent 2 }}
  restartPolicy: Always
  startupProbe:
    httpGet: { path: /readyz, port: http-metrics }
    periodSeconds: 2
    failureThreshold: {{ max 1 (div .Values.startupTimeoutSeconds 2) }}
{{- end }}

{{/*
kubeconfig-rotator-sidecar.volumes: the volumes the sidecar needs, to add to the same pod's volumes. The
output volume is memory-backed: the private key never touches the node's disk.
*/}}
{{- define "kubeconfig-rotator-sidecar.volumes" -}}
- name: kubeconfig-rotator-config
  configMap: { name: {{ include "kubeconfig-rotator-sidecar.fullname" . }} }
- name: kubeconfig-rotator-state
  emptyDir: { medium: Memory, sizeLimit: 1Mi }
- name: {{ .Values.outputVolumeName }}
  emptyDir: { medium: Memory, sizeLimit: 4Mi }
{{- range .Values.targets }}
- name: kubeconfig-rotator-bootstrap-{{ .name }}
  secret:
    secretName: {{ .bootstrapSecret.name }}
    # Readable whatever user the sidecar runs as; only the sidecar container mounts it.
    defaultMode: 0444
    # Optional: the pod starts before `kubeconfig-rotator bootstrap` has run; the sidecar waits for it.
    optional: true
{{- end }}
{{- end }}

{{/*
kubeconfig-rotator-sidecar.agentVolumeMount: mount the published kubeconfigs into the agent container
(read-only). Each target's kubeconfig is then at <outputPath>/<target>/kubeconfig.
*/}}
{{- define "kubeconfig-rotator-sidecar.agentVolumeMount" -}}
- name: {{ .Values.outputVolumeName }}
  mountPath: {{ .Values.outputPath }}
  readOnly: true
{{- end }}

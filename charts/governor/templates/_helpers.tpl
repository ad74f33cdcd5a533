{{- define "governor.name" -}}{{ .Release.Name | trunc 40 | trimSuffix "-" }}{{- end -}}
{{- define "governor.image" -}}{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}{{- end -}}
{{- define "governor.labels" -}}
app.kubernetes.io/name: governor
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}
{{- define "governor.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}
{{- define "governor.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}
{{- /* What the operator may do where it watches: only the resources and verbs it uses. */ -}}
{{- define "governor.operatorRules" -}}
# Read SLOs; write only their status.
- apiGroups: ["governor.dev"]
  resources: ["servicelevelobjectives"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["governor.dev"]
  resources: ["servicelevelobjectives/status"]
  verbs: ["get", "patch", "update"]
# Targets: watched, scaled through the scale subresource, pod template
# annotated when an SLO sets rollPods.
- apiGroups: ["apps"]
  resources: ["deployments", "statefulsets"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["apps"]
  resources: ["deployments/scale", "statefulsets/scale"]
  verbs: ["get", "patch", "update"]
# HorizontalPodAutoscalers: watched to find one scaling a target; its
# minReplicas moved when an SLO sets scaling.driveHpa.
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["get", "list", "watch", "patch"]
# Pool-size keys and, without prometheus-operator, rule files.
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "create", "patch", "delete"]
# Cache warm-up Jobs, instantiated from CronJobs that opt in; HTTP warm-ups
# check the Service they address.
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["list", "create"]
- apiGroups: ["batch"]
  resources: ["cronjobs"]
  verbs: ["get"]
- apiGroups: [""]
  resources: ["services"]
  verbs: ["get"]
# Burn-rate rules when prometheus-operator is installed.
- apiGroups: ["monitoring.coreos.com"]
  resources: ["prometheusrules"]
  verbs: ["get", "create", "patch", "delete"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end -}}
{{- define "governor.dashboardRules" -}}
- apiGroups: ["governor.dev"]
  resources: ["servicelevelobjectives"]
  verbs: ["get", "list", "watch"]
{{- end -}}

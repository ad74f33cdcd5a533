{{- /* The app.kubernetes.io/name label: nameOverride, else the chart's name. */ -}}
{{- define "governor.name" -}}{{ .Values.nameOverride | default .Chart.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- /* The prefix of every object's name: fullnameOverride, else the release
name; at most 40 characters so that "<prefix>-leader-election" stays a DNS label. */ -}}
{{- define "governor.fullname" -}}{{ .Values.fullnameOverride | default .Release.Name | trunc 40 | trimSuffix "-" }}{{- end -}}
{{- /* repository@digest when a digest is set (it pins the content), else repository:tag (default: the chart's appVersion). */ -}}
{{- define "governor.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}
{{- define "governor.labels" -}}
app.kubernetes.io/name: {{ include "governor.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}
{{- /* The ServiceAccount of a component ("operator" or "dashboard"): its
serviceAccount.name, else <fullname>-<component>. With create=false a name is
required: the namespace's default account would hand Governor's RBAC to every
pod that runs as it. Call with (list $ "operator"). */ -}}
{{- define "governor.serviceAccountName" -}}
{{- $root := index . 0 }}{{ $component := index . 1 }}
{{- $sa := (index $root.Values $component).serviceAccount }}
{{- if and (not $sa.create) (not $sa.name) }}
{{- fail (printf "%s.serviceAccount.name is required when %s.serviceAccount.create is false: the existing ServiceAccount the %s runs as (the chart binds its RBAC to it)" $component $component $component) }}
{{- end }}
{{- $sa.name | default (printf "%s-%s" (include "governor.fullname" $root) $component) }}
{{- end -}}
{{- /* A component's pod metadata: the chart's labels, the component, then
podLabels (which may not replace a label the chart sets: the selectors use
them) and podAnnotations. Call with (list $ "operator"). */ -}}
{{- define "governor.podMetadata" -}}
{{- $root := index . 0 }}{{ $component := index . 1 }}
{{- $values := index $root.Values $component }}
{{- $own := include "governor.labels" $root | fromYaml }}
{{- $_ := set $own "app.kubernetes.io/component" $component }}
{{- range $key, $_ := $values.podLabels }}
{{- if hasKey $own $key }}
{{- fail (printf "%s.podLabels: %s is a label the chart sets itself (its selectors use it); use another key" $component $key) }}
{{- end }}
{{- end }}
labels:
  {{- toYaml (merge $own $values.podLabels) | nindent 2 }}
{{- with $values.podAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
{{- /* Scheduling of a component: priorityClassName, nodeSelector,
tolerations, affinity (for the operator, a default that keeps its replicas
apart: operator.podAntiAffinity), topologySpreadConstraints. Call with (list $ "operator"). */ -}}
{{- define "governor.scheduling" -}}
{{- $root := index . 0 }}{{ $component := index . 1 }}
{{- $values := index $root.Values $component }}
{{- with $values.priorityClassName }}
priorityClassName: {{ . | quote }}
{{- end }}
{{- with $values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- $spread := $values.podAntiAffinity | default "none" }}
{{- if $values.affinity }}
affinity:
  {{- toYaml $values.affinity | nindent 2 }}
{{- else if ne $spread "none" }}
{{- $term := dict "topologyKey" "kubernetes.io/hostname" "labelSelector" (dict "matchLabels" (dict "app.kubernetes.io/instance" $root.Release.Name "app.kubernetes.io/component" $component)) }}
affinity:
  podAntiAffinity:
    {{- if eq $spread "hard" }}
    requiredDuringSchedulingIgnoredDuringExecution:
      - {{- toYaml $term | nindent 8 }}
    {{- else }}
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          {{- toYaml $term | nindent 10 }}
    {{- end }}
{{- end }}
{{- with $values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
{{- /* TLS and authentication to Prometheus and Jaeger, from Secrets: each
Secret mounted read-only as a directory (so a rotated file is seen; never a
subPath), and the GOVERNOR_<SOURCE>_* variables pointing at the files. A
variable is set only when its value is; Jaeger's only when jaeger.url is set.
Call with (list $ "env"|"volumeMounts"|"volumes"). */ -}}
{{- define "governor.sourceAuth" -}}
{{- $root := index . 0 }}{{ $part := index . 1 }}
{{- range $source := list "prometheus" "jaeger" }}
{{- $v := index $root.Values $source }}
{{- if $v.url }}
{{- $upper := upper $source }}
{{- $dir := printf "/etc/governor/%s" $source }}
{{- $tls := $v.tls | default dict }}
{{- $auth := $v.auth | default dict }}
{{- $basic := $auth.basicAuth | default dict }}
{{- $ca := $tls.caSecret | default dict }}
{{- $cert := $tls.certSecret | default dict }}
{{- $token := $auth.bearerTokenSecret | default dict }}
{{- $password := $basic.passwordSecret | default dict }}
{{- if and $token.name $auth.bearerTokenFile }}
{{- fail (printf "%s.auth: set bearerTokenSecret or bearerTokenFile, not both" $source) }}
{{- end }}
{{- if and (or $token.name $auth.bearerTokenFile) (or $basic.user $password.name) }}
{{- fail (printf "%s.auth: a bearer token and basic auth cannot both be sent; set one" $source) }}
{{- end }}
{{- if and $basic.user (not $password.name) }}
{{- fail (printf "%s.auth.basicAuth.passwordSecret.name is required with basicAuth.user" $source) }}
{{- end }}
{{- if and $password.name (not $basic.user) }}
{{- fail (printf "%s.auth.basicAuth.user is required with basicAuth.passwordSecret" $source) }}
{{- end }}
{{- /* (volume suffix, Secret, its keys as [key, file name] pairs, env var per file) */ -}}
{{- $mounts := list }}
{{- with $ca.name }}
{{- $mounts = append $mounts (dict "suffix" "ca" "secret" . "files" (list (list ($ca.key | default "ca.crt") "ca.crt" "CA_FILE"))) }}
{{- end }}
{{- with $cert.name }}
{{- $mounts = append $mounts (dict "suffix" "client-cert" "secret" . "files" (list (list ($cert.certKey | default "tls.crt") "tls.crt" "CERT_FILE") (list ($cert.keyKey | default "tls.key") "tls.key" "KEY_FILE"))) }}
{{- end }}
{{- with $token.name }}
{{- $mounts = append $mounts (dict "suffix" "token" "secret" . "files" (list (list ($token.key | default "token") "token" "BEARER_TOKEN_FILE"))) }}
{{- end }}
{{- with $password.name }}
{{- $mounts = append $mounts (dict "suffix" "basic-auth" "secret" . "files" (list (list ($password.key | default "password") "password" "BASIC_AUTH_PASSWORD_FILE"))) }}
{{- end }}
{{- if eq $part "env" }}
{{- range $m := $mounts }}
{{- range $f := $m.files }}
- name: GOVERNOR_{{ $upper }}_{{ index $f 2 }}
  value: {{ printf "%s/%s/%s" $dir $m.suffix (index $f 1) | quote }}
{{- end }}
{{- end }}
{{- with $auth.bearerTokenFile }}
- name: GOVERNOR_{{ $upper }}_BEARER_TOKEN_FILE
  value: {{ . | quote }}
{{- end }}
{{- if $tls.insecureSkipVerify }}
- name: GOVERNOR_{{ $upper }}_INSECURE_SKIP_VERIFY
  value: "true"
{{- end }}
{{- with $basic.user }}
- name: GOVERNOR_{{ $upper }}_BASIC_AUTH_USER
  value: {{ . | quote }}
{{- end }}
{{- with $v.headers }}
{{- $pairs := list }}
{{- range $name, $value := . }}{{ $pairs = append $pairs (printf "%s=%s" $name $value) }}{{ end }}
- name: GOVERNOR_{{ $upper }}_HEADERS
  value: {{ join "," $pairs | quote }}
{{- end }}
{{- else if eq $part "volumeMounts" }}
{{- range $m := $mounts }}
- name: {{ $source }}-{{ $m.suffix }}
  mountPath: {{ $dir }}/{{ $m.suffix }}
  readOnly: true
{{- end }}
{{- else if eq $part "volumes" }}
{{- range $m := $mounts }}
- name: {{ $source }}-{{ $m.suffix }}
  secret:
    secretName: {{ $m.secret }}
    defaultMode: 288  # 0440: the owner and the pod's fsGroup read
    items:
      {{- range $f := $m.files }}
      - {key: {{ index $f 0 | quote }}, path: {{ index $f 1 }}}
      {{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}
{{- define "governor.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
# Mounted Secrets (mode 0440) are readable through this group.
fsGroup: 65532
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

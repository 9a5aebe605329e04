{{/* Names, labels and images shared by every template. */}}

{{- define "quorum.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "quorum.workload" -}}
{{- printf "%s-%s" (include "quorum.fullname" .root) .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "quorum.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: quorum
{{- end -}}

{{- define "quorum.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "quorum.image" -}}
{{- $img := .root.Values.global.image -}}
{{- $tag := default .root.Chart.AppVersion $img.tag -}}
{{- if $img.registry -}}
{{- printf "%s/%s-%s:%s" $img.registry $img.repository .name $tag -}}
{{- else -}}
{{- printf "%s-%s:%s" $img.repository .name $tag -}}
{{- end -}}
{{- end -}}

{{/* Environment common to every service: Kafka connection and security, topic prefix, delivery, logging. */}}
{{- define "quorum.commonEnv" -}}
{{- $g := .Values.global -}}
- name: QUORUM_KAFKA_BOOTSTRAP_SERVERS
  value: {{ $g.kafka.bootstrapServers | quote }}
- name: QUORUM_KAFKA_SECURITY_PROTOCOL
  value: {{ $g.kafka.securityProtocol | quote }}
{{- with $g.kafka.sasl }}
{{- if .mechanism }}
{{- if not .secretName }}
{{- fail "global.kafka.sasl.secretName is required when global.kafka.sasl.mechanism is set" }}
{{- end }}
- name: QUORUM_KAFKA_SASL_MECHANISM
  value: {{ .mechanism | quote }}
- name: QUORUM_KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef: {name: {{ .secretName | quote }}, key: {{ .usernameKey | quote }}}
- name: QUORUM_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ .secretName | quote }}, key: {{ .passwordKey | quote }}}
{{- end }}
{{- end }}
{{- if $g.kafka.tls.caSecret }}
- name: QUORUM_KAFKA_SSL_CA_LOCATION
  value: {{ printf "/etc/quorum/kafka-ca/%s" $g.kafka.tls.caKey | quote }}
{{- end }}
{{- with $g.checkpointKey }}
{{- if .secretName }}
- name: QUORUM_CHECKPOINT_KEY
  valueFrom:
    secretKeyRef: {name: {{ .secretName | quote }}, key: {{ .key | quote }}, optional: true}
- name: QUORUM_CHECKPOINT_PREVIOUS_KEY
  valueFrom:
    secretKeyRef: {name: {{ .secretName | quote }}, key: {{ .previousKey | quote }}, optional: true}
{{- end }}
{{- end }}
- name: QUORUM_TOPIC_PREFIX
  value: {{ $g.topicPrefix | quote }}
- name: QUORUM_DELIVERY
  value: {{ $g.delivery | quote }}
- name: QUORUM_LOG_LEVEL
  value: {{ $g.logLevel | quote }}
- name: QUORUM_HTTP_HOST
  value: "0.0.0.0"
- name: QUORUM_HTTP_PORT
  value: "8080"
- name: QUORUM_INSTANCE_ID
  valueFrom:
    fieldRef: {fieldPath: metadata.name}
{{- range $k, $v := $g.env }}
- name: {{ $k }}
  value: {{ $v | quote }}
{{- end }}
{{- end -}}

{{/* The CA bundle volume mount and volume, when the brokers' CA comes from a Secret. */}}
{{- define "quorum.kafkaCaMount" -}}
{{- if .Values.global.kafka.tls.caSecret }}
- {name: kafka-ca, mountPath: /etc/quorum/kafka-ca, readOnly: true}
{{- end }}
{{- end -}}

{{- define "quorum.kafkaCaVolume" -}}
{{- if .Values.global.kafka.tls.caSecret }}
- name: kafka-ca
  secret: {secretName: {{ .Values.global.kafka.tls.caSecret | quote }}}
{{- end }}
{{- end -}}

{{/* Pod-level restricted security context (Pod Security Standards "restricted"). */}}
{{- define "quorum.podSecurity" -}}
runAsNonRoot: true
runAsUser: {{ .Values.podSecurity.runAsUser }}
runAsGroup: {{ .Values.podSecurity.runAsUser }}
fsGroup: {{ .Values.podSecurity.runAsUser }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Pod spec fields shared by every pod: service account, pull secrets. */}}
{{- define "quorum.podCommon" -}}
serviceAccountName: {{ include "quorum.fullname" . }}
automountServiceAccountToken: false
{{- with .Values.global.imagePullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
{{- end -}}

{{- define "quorum.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Lockstep settings of one service (.root, .name): QUORUM_LOCKSTEP for ingest (the source) and the
services of lockstep.services; ingest also gets the services whose reports it waits for, its timeout and whether it
stands by after its replay. A lockstep
service must run one instance: sys.clock has one partition, read by one member of a consumer group. */}}
{{- define "quorum.lockstepEnv" -}}
{{- $ls := .root.Values.lockstep -}}
{{- if $ls.enabled -}}
{{- $groups := list -}}
{{- range $name := $ls.services -}}
{{- $svc := index $.root.Values.services $name | default dict -}}
{{- if not $svc -}}
{{- fail (printf "lockstep.services names %s, which is not a service of services:" $name) -}}
{{- end -}}
{{- if $svc.enabled -}}
{{- if or (ne (int $svc.replicas) 1) $svc.hpa.enabled -}}
{{- fail (printf "services.%s must run one instance while lockstep.enabled (replicas 1, hpa.enabled false): sys.clock has one partition, read by one member of its group" $name) -}}
{{- end -}}
{{- $groups = append $groups $name -}}
{{- end -}}
{{- end -}}
{{- if or (eq .name "ingest") (has .name $groups) }}
- name: QUORUM_LOCKSTEP
  value: "true"
{{- end }}
{{- if eq .name "ingest" }}
- name: QUORUM_LOCKSTEP_GROUPS
  value: {{ $groups | sortAlpha | toJson | quote }}
- name: QUORUM_LOCKSTEP_TIMEOUT_S
  value: {{ $ls.timeoutSeconds | quote }}
- name: QUORUM_LOCKSTEP_STANDBY
  value: {{ $ls.standby | default false | toString | quote }}
{{- end }}
{{- end -}}
{{- end -}}

{{/*
The pod template of one service (metadata + spec), shared by its Deployment or Job. Called with a dict:
root (the chart context), name, svc (the service's values), sidecar (bool), mandate (bool),
socketDir, socket.
*/}}
{{- define "quorum.servicePod" -}}
{{- $root := .root }}
{{- $name := .name }}
{{- $svc := .svc }}
{{- $ctx := dict "root" $root "name" $name }}
{{- $sidecar := .sidecar }}
{{- $mandate := .mandate }}
{{- $socketDir := .socketDir }}
{{- $socket := .socket -}}
metadata:
  labels:
    {{- include "quorum.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ $name }}
  {{- if or $sidecar $mandate }}
  annotations:
    {{- if $sidecar }}
    checksum/risk-sidecar-config: {{ $root.Values.riskSidecar.config | sha256sum | trunc 16 | quote }}
    {{- end }}
    {{- if $mandate }}
    checksum/mandate: {{ $root.Values.mandate | sha256sum | trunc 16 | quote }}
    {{- end }}
  {{- end }}
spec:
  {{- include "quorum.podCommon" $root | nindent 2 }}
  terminationGracePeriodSeconds: 30
  {{- if eq $svc.kind "Job" }}
  restartPolicy: Never
  {{- end }}
  securityContext:
    {{- include "quorum.podSecurity" $root | nindent 4 }}
  {{- if $svc.gpu }}
  nodeSelector:
    {{- toYaml $root.Values.gpu.nodeSelector | nindent 4 }}
  {{- with $root.Values.gpu.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- end }}
  containers:
    - name: {{ $name }}
      image: {{ default (include "quorum.image" $ctx) $svc.image | quote }}
      imagePullPolicy: {{ $root.Values.global.image.pullPolicy }}
      ports:
        - {name: http, containerPort: 8080, protocol: TCP}
      env:
        {{- include "quorum.commonEnv" $root | nindent 8 }}
        - name: QUORUM_SERVICE_NAME
          value: {{ $name | quote }}
        {{- include "quorum.lockstepEnv" (dict "root" $root "name" $name) | nindent 8 }}
        {{- if $sidecar }}
        - name: QUORUM_SIDECAR_SOCKET
          value: {{ $socket | quote }}
        - name: QUORUM_SIDECAR_DEADLINE_MS
          value: {{ $root.Values.riskSidecar.deadlineMs | quote }}
        {{- end }}
        {{- if $mandate }}
        - name: QUORUM_MANDATE_PATH
          value: /etc/quorum/mandate/mandate.yaml
        {{- end }}
        {{- range $k, $v := $svc.env }}
        - name: {{ $k }}
          value: {{ $v | quote }}
        {{- end }}
        {{- range $k, $ref := $svc.secretEnv }}
        - name: {{ $k }}
          valueFrom:
            secretKeyRef: {name: {{ $ref.secretName | quote }}, key: {{ $ref.key | quote }}}
        {{- end }}
      startupProbe:
        httpGet: {path: /healthz, port: http}
        periodSeconds: 5
        failureThreshold: {{ div (add $svc.startupSeconds 4) 5 }}
      readinessProbe:
        httpGet: {path: /readyz, port: http}
        periodSeconds: 5
        failureThreshold: 3
      livenessProbe:
        httpGet: {path: /healthz, port: http}
        periodSeconds: 10
        timeoutSeconds: 3
        failureThreshold: 3
      resources:
        {{- $res := deepCopy $svc.resources }}
        {{- if $svc.gpu }}
        {{- $limits := default (dict) $res.limits }}
        {{- $_ := set $limits $root.Values.gpu.resourceName ($root.Values.gpu.count | toString) }}
        {{- $_ := set $res "limits" $limits }}
        {{- end }}
        {{- toYaml $res | nindent 8 }}
      securityContext:
        {{- include "quorum.containerSecurity" $root | nindent 8 }}
      volumeMounts:
        - {name: tmp, mountPath: /tmp}
        {{- if $sidecar }}
        - {name: risk-socket, mountPath: {{ $socketDir }}}
        {{- end }}
        {{- if $mandate }}
        - {name: mandate, mountPath: /etc/quorum/mandate, readOnly: true}
        {{- end }}
        {{- include "quorum.kafkaCaMount" $root | nindent 8 }}
    {{- if $sidecar }}
    - name: risk-sidecar
      image: {{ default (include "quorum.image" (dict "root" $root "name" "risk-sidecar")) $root.Values.riskSidecar.image | quote }}
      imagePullPolicy: {{ $root.Values.global.image.pullPolicy }}
      args:
        - --config
        - /etc/quorum-risk/sidecar.conf
        - --socket
        - {{ $socket }}
        - --metrics-port
        - {{ $root.Values.riskSidecar.metricsPort | quote }}
        {{- if $root.Values.riskSidecar.state.enabled }}
        - --state-file
        - /var/lib/quorum-risk/state
        - --state-interval-ms
        - {{ $root.Values.riskSidecar.state.intervalMs | quote }}
        {{- end }}
      # The metrics endpoint binds 127.0.0.1, so the probes run inside the container.
      readinessProbe:
        exec:
          command: ["test", "-S", {{ $socket | quote }}]
        periodSeconds: 5
      livenessProbe:
        exec:
          command:
            - bash
            - -c
            - {{ printf "exec 3<>/dev/tcp/127.0.0.1/%v && printf 'GET /metrics HTTP/1.0\\r\\n\\r\\n' >&3 && head -c 12 <&3 | grep -q ' 200'" $root.Values.riskSidecar.metricsPort | quote }}
        periodSeconds: 10
        timeoutSeconds: 3
      resources:
        {{- toYaml $root.Values.riskSidecar.resources | nindent 8 }}
      securityContext:
        {{- include "quorum.containerSecurity" $root | nindent 8 }}
      volumeMounts:
        - {name: risk-socket, mountPath: {{ $socketDir }}}
        - {name: risk-config, mountPath: /etc/quorum-risk, readOnly: true}
        {{- if $root.Values.riskSidecar.state.enabled }}
        - {name: risk-state, mountPath: /var/lib/quorum-risk}
        {{- end }}
    {{- end }}
  volumes:
    - name: tmp
      emptyDir: {sizeLimit: {{ $svc.tmpSizeLimit }}}
    {{- if $sidecar }}
    - name: risk-socket
      emptyDir: {medium: Memory, sizeLimit: 1Mi}
    - name: risk-config
      configMap: {name: {{ include "quorum.workload" (dict "root" $root "name" "risk-sidecar") }}}
    {{- if $root.Values.riskSidecar.state.enabled }}
    - name: risk-state
      emptyDir: {sizeLimit: {{ $root.Values.riskSidecar.state.sizeLimit }}}
    {{- end }}
    {{- end }}
    {{- if $mandate }}
    - name: mandate
      configMap: {name: {{ include "quorum.workload" (dict "root" $root "name" "mandate") }}}
    {{- end }}
    {{- include "quorum.kafkaCaVolume" $root | nindent 4 }}
{{- end -}}

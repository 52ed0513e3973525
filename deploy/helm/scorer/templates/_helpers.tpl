{{- define "scorer.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "scorer.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* selector labels of one component: scorer, triton, profiles, incidents, lag-exporter */}}
{{- define "scorer.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "scorer.image" -}}
{{ printf "%s:%s" .Values.image.repository .Values.image.tag }}
{{- end -}}

{{- define "scorer.sasl" -}}
{{- hasPrefix "SASL" .Values.kafka.securityProtocol -}}
{{- end -}}

{{- define "scorer.tls" -}}
{{- hasSuffix "SSL" .Values.kafka.securityProtocol -}}
{{- end -}}

{{/* SCORER_* settings every component shares: brokers, security, topics. */}}
{{- define "scorer.kafkaEnv" -}}
- name: SCORER_KAFKA__BOOTSTRAP_SERVERS
  value: {{ required "kafka.bootstrapServers: the Kafka brokers (host:port,...) are required" .Values.kafka.bootstrapServers | quote }}
- name: SCORER_KAFKA__GROUP_ID
  value: {{ .Values.kafka.groupId | quote }}
- name: SCORER_KAFKA__SECURITY_PROTOCOL
  value: {{ .Values.kafka.securityProtocol | quote }}
- name: SCORER_KAFKA__TRANSACTIONAL
  value: {{ .Values.kafka.transactional | quote }}
{{- if .Values.kafka.replicationFactor }}
- name: SCORER_KAFKA__REPLICATION_FACTOR
  value: {{ .Values.kafka.replicationFactor | quote }}
{{- end }}
{{- if eq (include "scorer.sasl" .) "true" }}
- name: SCORER_KAFKA__SASL_MECHANISM
  value: {{ .Values.kafka.saslMechanism | quote }}
- name: SCORER_KAFKA__SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ required "kafka.sasl.existingSecret: a Secret with the SASL username and password is required for SASL_* protocols" .Values.kafka.sasl.existingSecret }}
      key: {{ .Values.kafka.sasl.usernameKey }}
- name: SCORER_KAFKA__SASL_PASSWORD_FILE
  value: /run/secrets/kafka-sasl/{{ .Values.kafka.sasl.passwordKey }}
{{- end }}
{{- if eq (include "scorer.tls" .) "true" }}
- name: SCORER_KAFKA__SSL_CAFILE
  value: /run/secrets/kafka-tls/{{ .Values.kafka.tls.caKey }}
- name: SCORER_KAFKA__SSL_CHECK_HOSTNAME
  value: {{ .Values.kafka.tls.checkHostname | quote }}
{{- if .Values.kafka.tls.certKey }}
- name: SCORER_KAFKA__SSL_CERTFILE
  value: /run/secrets/kafka-tls/{{ .Values.kafka.tls.certKey }}
- name: SCORER_KAFKA__SSL_KEYFILE
  value: /run/secrets/kafka-tls/{{ .Values.kafka.tls.keyKey }}
{{- end }}
{{- end }}
- name: SCORER_TOPICS__NETFLOW
  value: {{ .Values.topics.netflow | quote }}
- name: SCORER_TOPICS__EDR
  value: {{ .Values.topics.edr | quote }}
- name: SCORER_TOPICS__SIEM
  value: {{ .Values.topics.siem | quote }}
- name: SCORER_TOPICS__ALERTS_PREFIX
  value: {{ .Values.topics.alertsPrefix | quote }}
- name: SCORER_TOPICS__DEAD_LETTER
  value: {{ .Values.topics.deadLetter | quote }}
{{- end -}}

{{- define "scorer.kafkaVolumes" -}}
- name: tmp
  emptyDir: {}
{{- if eq (include "scorer.sasl" .) "true" }}
- name: kafka-sasl
  secret:
    secretName: {{ .Values.kafka.sasl.existingSecret }}
    defaultMode: 0400
    items:
      - {key: {{ .Values.kafka.sasl.passwordKey }}, path: {{ .Values.kafka.sasl.passwordKey }}}
{{- end }}
{{- if eq (include "scorer.tls" .) "true" }}
- name: kafka-tls
  secret:
    secretName: {{ required "kafka.tls.existingSecret: a Secret with the CA bundle is required for SSL / SASL_SSL" .Values.kafka.tls.existingSecret }}
    defaultMode: 0400
{{- end }}
{{- end -}}

{{- define "scorer.kafkaMounts" -}}
- {name: tmp, mountPath: /tmp}
{{- if eq (include "scorer.sasl" .) "true" }}
- {name: kafka-sasl, mountPath: /run/secrets/kafka-sasl, readOnly: true}
{{- end }}
{{- if eq (include "scorer.tls" .) "true" }}
- {name: kafka-tls, mountPath: /run/secrets/kafka-tls, readOnly: true}
{{- end }}
{{- end -}}

{{- define "scorer.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities: {drop: [ALL]}
{{- end -}}

{{/* The model repository volume and, for source=image, the init container filling it. */}}
{{- define "scorer.modelVolume" -}}
- name: model-repository
{{- if eq .Values.modelRepository.source "volume" }}
  persistentVolumeClaim:
    claimName: {{ required "modelRepository.volume.claimName: the PersistentVolumeClaim holding the model repository" .Values.modelRepository.volume.claimName }}
    readOnly: true
{{- else }}
  emptyDir: {}
{{- end }}
{{- end -}}

{{- define "scorer.modelInit" -}}
{{- if eq .Values.modelRepository.source "image" }}
initContainers:
  - name: model-repository
    image: {{ printf "%s:%s" .Values.modelRepository.image.repository .Values.modelRepository.image.tag }}
    command: [cp, -a, {{ printf "%s/." .Values.modelRepository.image.path }}, /models/]
    volumeMounts:
      - {name: model-repository, mountPath: /models}
    securityContext:
      {{- include "scorer.containerSecurity" . | nindent 6 }}
{{- end }}
{{- end -}}

"""Rules every render of the chart must keep: restricted pod security, the execution pod's sidecar,
GPU scheduling, deny-by-default network policies, labels, probes and resources, secrets from Secrets,
autoscaling bounded by partitions, and environment variables the services actually read."""

from __future__ import annotations

import importlib
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from helmlib import ROOT, Rendered, StrictLoader, template

STANDARD_LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/version",
                   "app.kubernetes.io/managed-by", "app.kubernetes.io/part-of", "helm.sh/chart")
SECRET_WORDS = ("KEY", "SECRET", "PASSWORD", "TOKEN")
NO_PACKAGE_YET = {"sentiment", "forecaster"}
"""Model services whose packages do not exist yet: their env cannot be checked against settings."""
SIDECAR_BIN = ROOT / "build" / "risk_sidecar" / "quorum-risk-sidecar"

pytestmark = pytest.mark.timeout(1200)  # the first test may build Helm (install-helm.sh, ~3-5 min)


def pod_of(r: Rendered, service: str) -> dict[str, Any]:
    """The pod spec of ``service``'s workload."""
    return r.workload(service)["spec"]["template"]["spec"]


def container(pod: dict[str, Any], name: str) -> dict[str, Any]:
    """The container ``name`` of a pod spec."""
    return next(c for c in pod["containers"] if c["name"] == name)


def env_of(c: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Environment variable name -> its entry."""
    return {e["name"]: e for e in c.get("env", [])}


def enabled(r: Rendered) -> dict[str, dict[str, Any]]:
    """The enabled services' value blocks."""
    return {n: s for n, s in r.values["services"].items() if s["enabled"]}


def test_every_pod_runs_restricted(rendered: Rendered) -> None:
    pods = rendered.pod_specs()
    assert len(pods) == len(enabled(rendered)) + 1  # + the topic Job
    for where, pod in pods.items():
        psc = pod["securityContext"]
        assert psc["runAsNonRoot"] is True and psc["runAsUser"] > 0, where
        assert psc["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert pod["automountServiceAccountToken"] is False, where
        assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC"), where
        assert all("hostPath" not in v for v in pod.get("volumes", [])), where
        for c in pod["containers"] + pod.get("initContainers", []):
            sc = c["securityContext"]
            at = f"{where} container {c['name']}"
            assert sc["runAsNonRoot"] is True, at
            assert sc["readOnlyRootFilesystem"] is True, at
            assert sc["allowPrivilegeEscalation"] is False, at
            assert sc["capabilities"] == {"drop": ["ALL"]}, at
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, at
            assert not sc.get("privileged"), at


def test_every_container_has_resources_and_probes(rendered: Rendered) -> None:
    for where, pod in rendered.pod_specs().items():
        for c in pod["containers"]:
            at = f"{where} container {c['name']}"
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][kind]), at
            if where != "Job/quorum-create-topics":
                assert "livenessProbe" in c and "readinessProbe" in c, at


def test_execution_pod_has_the_sidecar_on_a_shared_emptydir_socket(rendered: Rendered) -> None:
    pod = pod_of(rendered, "execution")
    assert [c["name"] for c in pod["containers"]] == ["execution", "risk-sidecar"]
    execution, sidecar = pod["containers"]
    assert sidecar["image"].split("/")[-1].startswith("quorum-risk-sidecar:")
    args = sidecar["args"]
    socket = args[args.index("--socket") + 1]
    assert args[args.index("--metrics-port") + 1] == str(rendered.values["riskSidecar"]["metricsPort"])
    env = env_of(execution)
    assert env["QUORUM_SIDECAR_SOCKET"]["value"] == socket
    assert float(env["QUORUM_SIDECAR_DEADLINE_MS"]["value"]) == rendered.values["riskSidecar"]["deadlineMs"]
    volumes = {v["name"]: v for v in pod["volumes"]}

    def mount_of(c: dict[str, Any], path: str) -> dict[str, Any]:
        return next(m for m in c["volumeMounts"] if path.startswith(m["mountPath"].rstrip("/") + "/"))

    shared_e, shared_s = mount_of(execution, socket), mount_of(sidecar, socket)
    assert shared_e["name"] == shared_s["name"] and shared_e["mountPath"] == shared_s["mountPath"]
    assert "emptyDir" in volumes[shared_e["name"]]
    config = args[args.index("--config") + 1]
    cm_volume = volumes[mount_of(sidecar, config)["name"]]["configMap"]["name"]
    assert Path(config).name in rendered.get("ConfigMap", cm_volume)["data"]
    other = [d for d in rendered.of_kind("Deployment") if d["metadata"]["name"] != "quorum-execution"]
    assert all(len(d["spec"]["template"]["spec"]["containers"]) == 1 for d in other)


def test_the_sidecar_keeps_its_state_file_on_a_pod_volume(rendered: Rendered) -> None:
    """On a pod volume, not in the container: a restarted sidecar container reads its ledger and halts back."""
    sidecar = container(pod_of(rendered, "execution"), "risk-sidecar")
    args = sidecar["args"]
    state = rendered.values["riskSidecar"]["state"]
    if not state["enabled"]:
        assert "--state-file" not in args
        return
    path = args[args.index("--state-file") + 1]
    assert args[args.index("--state-interval-ms") + 1] == str(state["intervalMs"])
    mount = next(m for m in sidecar["volumeMounts"] if path.startswith(m["mountPath"].rstrip("/") + "/"))
    volumes = {v["name"]: v for v in pod_of(rendered, "execution")["volumes"]}
    assert volumes[mount["name"]]["emptyDir"]["sizeLimit"] == state["sizeLimit"]
    assert not mount.get("readOnly", False)


def test_the_chart_sidecar_config_starts_the_real_sidecar(renders: dict[str, Rendered]) -> None:
    if not SIDECAR_BIN.is_file():
        proc = subprocess.run(["bash", "services/risk_sidecar/scripts/build.sh"], cwd=ROOT, capture_output=True,
                              text=True, timeout=900)
        assert proc.returncode == 0, f"could not build the sidecar:\n{proc.stderr[-2000:]}"
    conf = renders["default"].get("ConfigMap", "quorum-risk-sidecar")["data"]["sidecar.conf"]
    with tempfile.TemporaryDirectory() as tmp:
        path, socket = Path(tmp, "sidecar.conf"), Path(tmp, "risk.sock")
        path.write_text(conf)
        proc = subprocess.Popen([str(SIDECAR_BIN), "--config", str(path), "--socket", str(socket)],
                                stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 10
            while not socket.exists() and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)
            assert socket.exists(), f"the sidecar refused the chart's config: {proc.poll()} " \
                f"{proc.stderr.read() if proc.poll() is not None else ''}"
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=10)


def test_gpu_pods_request_the_gpu_and_select_gpu_nodes(rendered: Rendered) -> None:
    gpu = rendered.values["gpu"]
    services = enabled(rendered)
    if rendered.name == "production":
        assert {"sentiment", "forecaster"} <= {n for n, s in services.items() if s["gpu"]}
    for name, svc in services.items():
        pod = pod_of(rendered, name)
        limits = container(pod, name)["resources"]["limits"]
        if svc["gpu"]:
            assert limits[gpu["resourceName"]] == str(gpu["count"]), name
            assert pod["nodeSelector"] == gpu["nodeSelector"], name
            assert pod["tolerations"] == gpu["tolerations"], name
        else:
            assert gpu["resourceName"] not in limits and "nodeSelector" not in pod, name


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def test_network_policies_deny_by_default_and_allow_little(rendered: Rendered) -> None:
    policies = rendered.of_kind("NetworkPolicy")
    deny = [p for p in policies if not p["spec"].get("ingress") and not p["spec"].get("egress")]
    assert len(deny) == 1 and set(deny[0]["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    for where, pod_labels in ((w, d["spec"]["template"]["metadata"]["labels"]) for w, d in
                              ((f"{d['kind']}/{d['metadata']['name']}", d) for d in rendered.docs
                               if d["kind"] in ("Deployment", "Job"))):
        assert _selects(deny[0]["spec"]["podSelector"], pod_labels), f"{where} escapes the default deny"
    internet = {n for n, s in enabled(rendered).items() if s["internetEgress"]}
    for p in policies:
        for rule in p["spec"].get("ingress", []):
            assert rule.get("from") and rule.get("ports"), f"{p['metadata']['name']} allows ingress from anywhere"
        for rule in p["spec"].get("egress", []):
            assert rule.get("to") and rule.get("ports"), f"{p['metadata']['name']} allows egress anywhere"
            for peer in rule["to"]:
                if peer.get("ipBlock", {}).get("cidr") == "0.0.0.0/0" and p["metadata"]["name"].endswith(
                        "-internet-egress"):
                    assert peer["ipBlock"]["except"], p["metadata"]["name"]
                    assert [port["port"] for port in rule["ports"]] == [443]
    egress_to_internet = {p["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
                          for p in policies if p["metadata"]["name"].endswith("-internet-egress")}
    assert egress_to_internet == internet
    if rendered.name == "production":
        assert internet == {"ingest", "execution"}


def test_labels_on_every_resource(rendered: Rendered) -> None:
    for doc in rendered.docs:
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        labels = doc["metadata"]["labels"]
        assert all(labels.get(k) for k in STANDARD_LABELS), where
        assert labels["app.kubernetes.io/instance"] == "quorum" and labels["app.kubernetes.io/name"] == "quorum"
        if doc["kind"] in ("Deployment", "Job"):
            pod_labels = doc["spec"]["template"]["metadata"]["labels"]
            assert all(pod_labels.get(k) for k in (*STANDARD_LABELS, "app.kubernetes.io/component")), where
        if doc["kind"] == "Deployment":
            assert _selects(doc["spec"]["selector"], doc["spec"]["template"]["metadata"]["labels"]), where


def test_services_pdbs_and_hpas_target_their_workload(rendered: Rendered) -> None:
    pods = {f"{d['kind']}/{d['metadata']['name']}": d["spec"]["template"]["metadata"]["labels"]
            for d in rendered.docs if d["kind"] in ("Deployment", "Job")}
    for obj, selector in [(s, {"matchLabels": s["spec"]["selector"]}) for s in rendered.of_kind("Service")] + \
            [(p, p["spec"]["selector"]) for p in rendered.of_kind("PodDisruptionBudget")]:
        selected = [w for w, labels in pods.items() if _selects(selector, labels)]
        assert len(selected) == 1, f"{obj['kind']}/{obj['metadata']['name']} selects {selected}"
    deployments = {d["metadata"]["name"]: d for d in rendered.of_kind("Deployment")}
    for hpa in rendered.of_kind("HorizontalPodAutoscaler"):
        target = deployments[hpa["spec"]["scaleTargetRef"]["name"]]
        assert "replicas" not in target["spec"], "an autoscaled Deployment must not pin replicas"


def test_autoscaling_is_bounded_by_partitions(rendered: Rendered) -> None:
    catalog = {t["name"]: t for t in yaml.safe_load((ROOT / "schemas" / "topics.yaml").read_text())["topics"]}
    hpas = rendered.of_kind("HorizontalPodAutoscaler")
    if rendered.name == "production":
        assert {h["metadata"]["name"] for h in hpas} == {"quorum-sentiment", "quorum-forecaster"}
    for hpa in hpas:
        topic = hpa["metadata"]["annotations"]["quorum.io/partitioned-by"]
        assert topic in catalog, f"{hpa['metadata']['name']}: unknown topic {topic}"
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"] <= catalog[topic]["partitions"]


def _settings_cls(service: str) -> type:
    """The settings class a service reads its environment with."""
    if service == "admin":
        from quorum_admin.config import AdminSettings
        return AdminSettings
    return importlib.import_module(f"quorum_{service}.app").SPEC.settings_cls


def _materialise_configmaps(r: Rendered, pod: dict[str, Any], c: dict[str, Any], into: Path) -> dict[str, str]:
    """Write the ConfigMaps mounted in ``c`` under ``into``; mount path -> local directory."""
    volumes = {v["name"]: v for v in pod["volumes"]}
    out = {}
    for mount in c["volumeMounts"]:
        cm = volumes[mount["name"]].get("configMap")
        if cm:
            local = into / mount["name"]
            local.mkdir(parents=True)
            for key, text in r.get("ConfigMap", cm["name"])["data"].items():
                (local / key).write_text(text)
            out[mount["mountPath"]] = str(local)
    return out


def test_environment_is_read_by_the_services(rendered: Rendered, monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    """Every QUORUM_* variable is a setting of its service, and the plain values load (mounted
    ConfigMaps, such as the mandate, are materialised locally)."""
    from quorum_common.runtime.config import ServiceSettings, load_settings
    for name in enabled(rendered):
        pod = pod_of(rendered, name)
        c = container(pod, name)
        env = env_of(c)
        if name in NO_PACKAGE_YET:
            with pytest.raises(ImportError):
                importlib.import_module(f"quorum_{name}")
            continue
        cls = _settings_cls(name)
        fields = set(cls.model_fields)
        unknown = [k for k in env if k.startswith("QUORUM_") and k.removeprefix("QUORUM_").lower() not in fields]
        assert not unknown, f"{name} does not read {unknown}"
        plain = {k: e["value"] for k, e in env.items() if "value" in e}
        for mount_path, local in _materialise_configmaps(rendered, pod, c, tmp_path / name).items():
            plain = {k: v.replace(mount_path, local, 1) if v.startswith(mount_path + "/") else v
                     for k, v in plain.items()}
        with monkeypatch.context() as m:
            for k in [k for k in os.environ if k.startswith("QUORUM_")]:
                m.delenv(k)
            for k, v in plain.items():
                m.setenv(k, v)
            load_settings(cls)
    job = rendered.get("Job", "quorum-create-topics")["spec"]["template"]["spec"]["containers"][0]
    assert job["command"][-1] == "quorum_common.bus.kafka_admin"
    job_unknown = [k for k in env_of(job) if k.removeprefix("QUORUM_").lower() not in ServiceSettings.model_fields
                   and k != "QUORUM_TOPIC_REPLICATION"]
    assert not job_unknown


def test_secrets_come_from_secret_refs(rendered: Rendered) -> None:
    for where, pod in rendered.pod_specs().items():
        for c in pod["containers"]:
            for name, e in env_of(c).items():
                if any(w in name for w in SECRET_WORDS):
                    assert "secretKeyRef" in e.get("valueFrom", {}), f"{where}: {name} is not from a Secret"
            if "QUORUM_TOPIC_PREFIX" in env_of(c):  # a desk container (not the sidecar): it may write checkpoints
                # Optional: without the Secret the pod starts and writes no checkpoints (engine_state.seal).
                for name, key in (("QUORUM_CHECKPOINT_KEY", "key"), ("QUORUM_CHECKPOINT_PREVIOUS_KEY", "previous")):
                    assert env_of(c)[name]["valueFrom"]["secretKeyRef"] == {
                        "name": "quorum-checkpoint-key", "key": key, "optional": True}, where
    admin = env_of(container(pod_of(rendered, "admin"), "admin"))
    assert admin["QUORUM_ADMIN_TOKENS"]["valueFrom"]["secretKeyRef"] == {"name": "quorum-admin-tokens",
                                                                         "key": "tokens.json"}
    if rendered.name == "production":
        ex = env_of(container(pod_of(rendered, "execution"), "execution"))
        assert ex["QUORUM_CCXT_API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "quorum-exchange"
        assert ex["QUORUM_VENUE"]["value"] == "ccxt"


def test_kafka_security_settings_reach_every_pod(rendered: Rendered) -> None:
    kafka = rendered.values["global"]["kafka"]
    for where, pod in rendered.pod_specs().items():
        c = pod["containers"][0]
        env = env_of(c)
        assert env["QUORUM_KAFKA_BOOTSTRAP_SERVERS"]["value"] == kafka["bootstrapServers"], where
        assert env["QUORUM_KAFKA_SECURITY_PROTOCOL"]["value"] == kafka["securityProtocol"], where
        assert ("QUORUM_KAFKA_SASL_PASSWORD" in env) == bool(kafka["sasl"]["mechanism"]), where
        if kafka["tls"]["caSecret"]:
            ca = env["QUORUM_KAFKA_SSL_CA_LOCATION"]["value"]
            mount = next(m for m in c["volumeMounts"] if ca.startswith(m["mountPath"] + "/"))
            volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
            assert volume["secret"]["secretName"] == kafka["tls"]["caSecret"], where
        else:
            assert "QUORUM_KAFKA_SSL_CA_LOCATION" not in env, where
        assert env["QUORUM_INSTANCE_ID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}, where
    if rendered.name == "production":
        assert kafka["securityProtocol"] == "SASL_SSL" and kafka["tls"]["caSecret"]


def test_mandate_configmap_is_a_valid_mandate(renders: dict[str, Rendered]) -> None:
    from quorum_manager.mandate import parse_mandate
    r = renders["production"]
    pod = pod_of(r, "manager")
    path = env_of(container(pod, "manager"))["QUORUM_MANDATE_PATH"]["value"]
    mount = next(m for m in container(pod, "manager")["volumeMounts"] if path.startswith(m["mountPath"] + "/"))
    cm = next(v for v in pod["volumes"] if v["name"] == mount["name"])["configMap"]["name"]
    assert parse_mandate(r.get("ConfigMap", cm)["data"][Path(path).name]).mandate_id == "production"
    default_manager = container(pod_of(renders["default"], "manager"), "manager")
    assert "QUORUM_MANDATE_PATH" not in env_of(default_manager)


def test_topics_job_runs_before_the_services(rendered: Rendered) -> None:
    job = rendered.get("Job", "quorum-create-topics")
    assert set(job["metadata"]["annotations"]["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    env = env_of(job["spec"]["template"]["spec"]["containers"][0])
    assert env["QUORUM_TOPIC_REPLICATION"]["value"] == str(rendered.values["topics"]["replicationFactor"])


def test_no_duplicate_keys_in_the_render(rendered: Rendered) -> None:
    assert list(yaml.load_all(rendered.text, Loader=StrictLoader))
    with pytest.raises(yaml.constructor.ConstructorError, match="duplicate"):
        yaml.load("a: 1\na: 2\n", Loader=StrictLoader)


def test_replay_ingest_is_a_job_and_live_ingest_a_deployment(renders: dict[str, Rendered], helm: str) -> None:
    job = renders["default"].workload("ingest")
    # A retried replay would publish every bar again to consumers that kept their state: never retried.
    assert job["kind"] == "Job" and job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    assert job["spec"]["backoffLimit"] == 0
    assert renders["production"].workload("ingest")["kind"] == "Deployment"
    changed = template(helm, [], "--set", "services.ingest.env.QUORUM_MAX_BARS=5")
    assert changed.returncode == 0, changed.stderr
    names = [d["metadata"]["name"] for d in yaml.safe_load_all(changed.stdout) if d and d["kind"] == "Job"]
    assert job["metadata"]["name"] not in names, "a changed replay Job must get a new name (immutable template)"
    refused = template(helm, [], "--set", "services.ingest.pdb.enabled=true")
    assert refused.returncode != 0 and "services.ingest" in refused.stderr


def test_the_cluster_desk_runs_in_lockstep_with_the_desks_consumers(rendered: Rendered) -> None:
    """Ingest waits for the reports of exactly the desk's lockstep consumers, each of them runs in lockstep
    as one instance, and the optimiser's weights land as inline (reproducible): the cluster decides as the
    embedded desk."""
    from quorum_desk.composition import consumer_inputs
    desk = sorted(consumer_inputs())
    ingest = env_of(container(pod_of(rendered, "ingest"), "ingest"))
    assert ingest["QUORUM_LOCKSTEP"]["value"] == "true"
    assert yaml.safe_load(ingest["QUORUM_LOCKSTEP_GROUPS"]["value"]) == desk
    assert float(ingest["QUORUM_LOCKSTEP_TIMEOUT_S"]["value"]) >= 120
    assert ingest["QUORUM_LOCKSTEP_STANDBY"]["value"] == "true"  # commands after the replay take effect
    services = enabled(rendered)
    for name in desk:
        env = env_of(container(pod_of(rendered, name), name))
        assert env["QUORUM_LOCKSTEP"]["value"] == "true", name
        assert env.get("QUORUM_OPTIMISER_WORKER", {"value": "inline"})["value"] in ("inline", "early"), name
        assert services[name]["replicas"] == 1 and not services[name]["hpa"]["enabled"], name
    for name in set(services) - {*desk, "ingest"}:
        assert "QUORUM_LOCKSTEP" not in env_of(container(pod_of(rendered, name), name)), name


def test_the_replay_job_stands_by_after_its_replay_unless_told_not_to(helm: str) -> None:
    """``lockstep.standby`` (default true) keeps the ingest Job releasing commands after its replay; false ends it."""
    off = template(helm, [], "--set", "lockstep.standby=false")
    assert off.returncode == 0, off.stderr
    job = next(d for d in yaml.safe_load_all(off.stdout) if d and d["kind"] == "Job")
    ingest = env_of(container(job["spec"]["template"]["spec"], "ingest"))
    assert ingest["QUORUM_LOCKSTEP_STANDBY"]["value"] == "false"
    refused = template(helm, [], "--set", "lockstep.standby=maybe")
    assert refused.returncode != 0 and "standby" in refused.stderr

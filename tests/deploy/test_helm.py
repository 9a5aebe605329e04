"""The Helm chart: lint --strict, render, strict offline schema validation, deploy/k8s in sync, skaffold."""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from helmlib import (
    CHART,
    CRD_SCHEMAS,
    RENDER_K8S,
    ROOT,
    VALUE_SETS,
    Rendered,
    helm_args,
    run,
    template,
    validate_manifest,
)

pytestmark = pytest.mark.timeout(1200)  # the first test may build Helm (install-helm.sh, ~3-5 min)


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_lint_strict(helm: str, value_set: str) -> None:
    proc = run([helm, "lint", "--strict", str(CHART), "--kube-version", "1.30.0",
                *helm_args(VALUE_SETS[value_set])])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 chart(s) failed" in proc.stdout
    assert "[WARNING]" not in proc.stdout and "[ERROR]" not in proc.stdout


@pytest.mark.parametrize(("flag", "field"), [
    ("global.delivery=twice", "delivery"),
    ("services.alpha.replicas=-1", "replicas"),
    ("services.alpha.colour=red", "colour"),
    ("global.kafka.securityProtocol=SSLv3", "securityProtocol"),
])
def test_bad_value_is_refused_naming_the_field(helm: str, flag: str, field: str) -> None:
    proc = template(helm, [], "--set", flag)
    assert proc.returncode != 0, f"--set {flag} rendered"
    assert field in proc.stderr, proc.stderr


def test_hpa_without_partition_topic_is_refused(helm: str) -> None:
    proc = template(helm, [], "--set", "services.alpha.hpa.enabled=true", "--set", "services.alpha.hpa.partitionedBy=",
                    "--set", "lockstep.enabled=false")  # lockstep refuses any HPA of alpha before this rule
    assert proc.returncode != 0 and "services.alpha.hpa.partitionedBy" in proc.stderr, proc.stderr


@pytest.mark.parametrize("flags", [
    ["services.alpha.replicas=2"],
    ["services.portfolio.hpa.enabled=true", "services.portfolio.hpa.partitionedBy=md.bars"],
])
def test_a_scaled_lockstep_service_is_refused(helm: str, flags: list[str]) -> None:
    """One instance per lockstep service: only one member of a group would get the clock ticks."""
    args = [a for f in flags for a in ("--set", f)]
    proc = template(helm, [], *args)
    service = flags[0].split(".")[1]
    assert proc.returncode != 0 and f"services.{service} must run one instance" in proc.stderr, proc.stderr
    assert template(helm, [], *args, "--set", "lockstep.enabled=false").returncode == 0, "lockstep off: allowed"


def test_sasl_without_secret_is_refused(helm: str) -> None:
    proc = template(helm, [], "--set", "global.kafka.sasl.mechanism=PLAIN")
    assert proc.returncode != 0 and "global.kafka.sasl.secretName" in proc.stderr, proc.stderr


def test_every_manifest_is_valid_in_strict_mode(rendered: Rendered) -> None:
    kinds = {d["kind"] for d in rendered.docs}
    assert {"Deployment", "Service", "ConfigMap", "NetworkPolicy", "PodDisruptionBudget", "Job",
            "ServiceAccount"} <= kinds
    errors = []
    for doc in rendered.docs:
        try:
            validate_manifest(doc)
        except (kubernetes_validate.ValidationError, jsonschema.ValidationError) as exc:
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {str(exc)[:400]}")
    assert not errors, "\n".join(errors)


def test_production_render_has_autoscalers_and_operator_resources(renders: dict[str, Rendered]) -> None:
    kinds = {d["kind"] for d in renders["production"].docs}
    assert {"HorizontalPodAutoscaler", "ServiceMonitor", "PrometheusRule"} <= kinds
    assert set(CRD_SCHEMAS) == {(d["apiVersion"], d["kind"]) for d in renders["production"].docs
                                if d["apiVersion"].startswith("monitoring.coreos.com/")}


def test_strict_validation_rejects_unknown_fields(renders: dict[str, Rendered]) -> None:
    deployment = copy.deepcopy(renders["default"].of_kind("Deployment")[0])
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_manifest(deployment)
    rule = copy.deepcopy(renders["production"].of_kind("PrometheusRule")[0])
    rule["spec"]["groups"][0]["rules"][0]["severity"] = "page"
    with pytest.raises(jsonschema.ValidationError):
        validate_manifest(rule)


def test_kind_without_schema_fails() -> None:
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        validate_manifest({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})


def test_deploy_k8s_is_in_sync_with_the_chart(helm: str) -> None:
    proc = run(["bash", str(RENDER_K8S), "--stdout"], env={"HELM": helm, "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    committed = (ROOT / "deploy" / "k8s" / "quorum.yaml").read_text()
    assert proc.stdout == committed, "deploy/k8s/quorum.yaml is stale: run `make k8s`"


def test_skaffold_builds_every_chart_service_and_sets_its_image() -> None:
    skaffold = yaml.safe_load((ROOT / "skaffold.yaml").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    release = skaffold["manifests"]["helm"]["releases"][0]
    assert (ROOT / release["chartPath"]) == CHART
    artifacts = {a["image"]: a for a in skaffold["build"]["artifacts"]}
    gpu = next(p for p in skaffold["profiles"] if p["name"] == "gpu")
    gpu_artifacts = {p["value"]["image"]: p["value"] for p in gpu["patches"] if p["path"] == "/build/artifacts/-"}
    for name, svc in values["services"].items():
        image = f"quorum-{name}"
        if svc["enabled"]:
            artifact = artifacts[image]
            assert (ROOT / artifact["context"] / artifact["docker"]["dockerfile"]).is_file(), image
            assert release["setValueTemplates"][f"services.{name}.image"] == \
                "{{.IMAGE_FULLY_QUALIFIED_" + image.replace("-", "_") + "}}"
        else:
            assert svc["gpu"], f"{name} is disabled by default but is no GPU model pod"
            assert image in gpu_artifacts, f"the gpu profile does not build {image}"
    sidecar = artifacts["quorum-risk-sidecar"]
    assert (ROOT / sidecar["context"] / sidecar["docker"]["dockerfile"]).is_file()
    assert "riskSidecar.image" in release["setValueTemplates"]
    assert set(artifacts) == {f"quorum-{n}" for n, s in values["services"].items() if s["enabled"]} \
        | {"quorum-risk-sidecar"}


def test_production_values_file_is_where_the_docs_say() -> None:
    assert Path(ROOT / "deploy" / "helm" / "values-production.yaml").is_file()

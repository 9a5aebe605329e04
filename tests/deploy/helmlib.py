"""Helpers of the chart tests: running Helm, rendering the chart for a value set, strict offline validation.

Kubernetes kinds are validated against the JSON schemas shipped by ``kubernetes-validate`` in strict
mode (``additionalProperties: false`` everywhere) for the chart's oldest and the newest Kubernetes
version. The two prometheus-operator kinds are not in those schemas: they are validated against the
small hand-written strict schemas below (:data:`CRD_SCHEMAS`), and any other kind without a schema fails.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "quorum"
PRODUCTION_VALUES = ROOT / "deploy" / "helm" / "values-production.yaml"
INSTALL_HELM = ROOT / "deploy" / "tools" / "install-helm.sh"
RENDER_K8S = ROOT / "deploy" / "tools" / "render-k8s.sh"
RELEASE = "quorum"
NAMESPACE = "quorum"
RENDER_KUBE_VERSION = "1.30.0"
VALIDATE_VERSIONS = ("1.27.0", kubernetes_validate.latest_version())
"""The chart's kubeVersion floor and the newest schemas shipped (strict validation runs on both)."""

_LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
_METADATA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name", "labels"],
    "properties": {"name": {"type": "string"}, "namespace": {"type": "string"}, "labels": _LABELS,
                   "annotations": _LABELS},
}
_DURATION = {"type": "string", "pattern": "^([0-9]+(ms|s|m|h|d|w|y))+$"}
CRD_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): {
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "kind": {"const": "ServiceMonitor"},
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "required": ["selector", "endpoints"],
                "properties": {
                    "selector": {"type": "object", "additionalProperties": False,
                                 "required": ["matchLabels"], "properties": {"matchLabels": _LABELS}},
                    "endpoints": {"type": "array", "minItems": 1, "items": {
                        "type": "object", "additionalProperties": False, "required": ["port"],
                        "properties": {"port": {"type": "string"}, "path": {"type": "string"},
                                       "interval": _DURATION}}},
                },
            },
        },
    },
    ("monitoring.coreos.com/v1", "PrometheusRule"): {
        "type": "object",
        "additionalProperties": False,
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "monitoring.coreos.com/v1"},
            "kind": {"const": "PrometheusRule"},
            "metadata": _METADATA,
            "spec": {
                "type": "object",
                "additionalProperties": False,
                "required": ["groups"],
                "properties": {"groups": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "additionalProperties": False, "required": ["name", "rules"],
                    "properties": {
                        "name": {"type": "string", "minLength": 1},
                        "interval": _DURATION,
                        "rules": {"type": "array", "minItems": 1, "items": {
                            "type": "object", "additionalProperties": False, "required": ["expr"],
                            "oneOf": [{"required": ["alert"]}, {"required": ["record"]}],
                            "properties": {
                                "alert": {"type": "string", "minLength": 1},
                                "record": {"type": "string", "minLength": 1},
                                "expr": {"type": ["string", "integer"]},
                                "for": _DURATION,
                                "keep_firing_for": _DURATION,
                                "labels": _LABELS,
                                "annotations": _LABELS,
                            }}},
                    }}}},
            },
        },
    },
}


@dataclass(frozen=True)
class Rendered:
    """One render of the chart: its values and its manifests."""

    name: str
    values: dict[str, Any]
    docs: list[dict[str, Any]]
    text: str

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        """The manifests of ``kind``."""
        return [d for d in self.docs if d["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        """The manifest of ``kind`` named ``name`` (fails the test when absent)."""
        found = [d for d in self.of_kind(kind) if d["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
        return found[0]

    def workload(self, service: str) -> dict[str, Any]:
        """The Deployment or Job running ``service`` (fails the test unless exactly one)."""
        found = [d for d in self.docs if d["kind"] in ("Deployment", "Job")
                 and d["metadata"]["labels"].get("app.kubernetes.io/component") == service]
        assert len(found) == 1, f"expected one workload of {service}, found {len(found)}"
        return found[0]

    def pod_specs(self) -> dict[str, dict[str, Any]]:
        """``Kind/name`` -> pod spec of every workload (Deployments, Jobs)."""
        return {f"{d['kind']}/{d['metadata']['name']}": d["spec"]["template"]["spec"]
                for d in self.docs if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job")}


class StrictLoader(yaml.SafeLoader):
    """A YAML loader that refuses duplicate mapping keys (the API server's strict decoding does too)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        """Build a mapping, failing on a key seen twice."""
        keys = [self.construct_object(k, deep=deep) for k, _ in node.value]
        dupes = sorted({str(k) for k in keys if keys.count(k) > 1})
        if dupes:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate keys {dupes}", node.start_mark)
        return super().construct_mapping(node, deep=deep)


def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` in the repository; the result carries stdout and stderr as text."""
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900, **kwargs)


def helm_args(values_files: list[Path]) -> list[str]:
    """The ``-f`` arguments for ``values_files``."""
    return [arg for f in values_files for arg in ("-f", str(f))]


def template(helm: str, values_files: list[Path], *extra: str) -> subprocess.CompletedProcess[str]:
    """``helm template`` of the chart (release quorum, namespace quorum)."""
    return run([helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE,
                "--kube-version", RENDER_KUBE_VERSION, *helm_args(values_files), *extra])


def merged_values(values_files: list[Path]) -> dict[str, Any]:
    """The chart's values with ``values_files`` merged over them (maps merge, everything else replaces)."""
    def merge(base: Any, over: Any) -> Any:
        if isinstance(base, dict) and isinstance(over, dict):
            return {**base, **{k: merge(base.get(k), v) for k, v in over.items()}}
        return over

    values = yaml.safe_load((CHART / "values.yaml").read_text())
    for f in values_files:
        values = merge(values, yaml.safe_load(f.read_text()))
    return values


VALUE_SETS: dict[str, list[Path]] = {"default": [], "production": [PRODUCTION_VALUES]}


def validate_manifest(doc: dict[str, Any]) -> None:
    """Validate ``doc`` strictly: Kubernetes schemas at every version of :data:`VALIDATE_VERSIONS`, or
    the hand-written :data:`CRD_SCHEMAS`; raises on any error or when no schema exists."""
    crd = CRD_SCHEMAS.get((doc.get("apiVersion"), doc.get("kind")))
    if crd is not None:
        jsonschema.Draft202012Validator(crd).validate(doc)
        return
    for version in VALIDATE_VERSIONS:
        kubernetes_validate.validate(doc, version, strict=True)

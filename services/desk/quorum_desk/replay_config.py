"""The configuration of a replayed desk: the recorded desk's mandate and settings, plus what-if changes.

- ``--mandate FILE``: the mandate the recorded desk ran with (default: the packaged one);
- ``--mandate-set FIELD=VALUE`` (repeatable, dotted paths into the document, YAML values): a what-if
  change of that mandate, e.g. ``max_drawdown=0.05`` or ``sector_caps.Energy=0.1``; the patched
  document is validated like any mandate and written to a temporary JSON file for the manager;
- ``--set SERVICE.FIELD=VALUE`` (repeatable): a settings field of a re-run service (``risk``,
  ``portfolio``, ...), validated against that service's settings class.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from quorum_manager.mandate import MandateError, parse_document, read_mandate_text, validate_mandate

from quorum_desk.composition import CONSUMERS
from quorum_desk.replay_window import ReplayInputError

MANAGER = "manager"


def parse_assignment(text: str, flag: str) -> tuple[list[str], Any]:
    """``a.b.c=VALUE`` → (``["a", "b", "c"]``, VALUE parsed as YAML)."""
    name, sep, raw = text.partition("=")
    path = [p for p in name.strip().split(".")]
    if not sep or not all(path):
        raise ReplayInputError(f"{flag}: {text!r} is not NAME=VALUE")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ReplayInputError(f"{flag} {name}: {raw!r} is not a YAML value: {exc}") from None
    return path, value


@dataclass
class ReplayConfig:
    """How the replayed desk is configured, relative to the recorded one."""

    mandate_path: Path | None = None
    mandate_changes: dict[str, Any] = field(default_factory=dict)
    """Dotted mandate field → new value (what-if)."""
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Service → settings field → value."""

    @classmethod
    def from_args(cls, mandate: str | None, mandate_set: list[str] | None,
                  settings_set: list[str] | None) -> ReplayConfig:
        """Parse and check the command-line form."""
        config = cls(Path(mandate) if mandate else None)
        for text in mandate_set or []:
            path, value = parse_assignment(text, "--mandate-set")
            config.mandate_changes[".".join(path)] = value
        for text in settings_set or []:
            path, value = parse_assignment(text, "--set")
            if len(path) != 2:
                raise ReplayInputError(f"--set: {text!r} must be SERVICE.FIELD=VALUE")
            config.settings.setdefault(path[0], {})[path[1]] = value
        config.check_settings()
        return config

    @property
    def is_what_if(self) -> bool:
        """Whether the replay changes anything against the recorded desk."""
        return bool(self.mandate_changes or self.settings)

    def check_settings(self) -> None:
        """Refuse an unknown service or field, or an invalid value, naming it."""
        specs = {spec.name: spec for spec in CONSUMERS}
        for service, fields in self.settings.items():
            spec = specs.get(service)
            if spec is None:
                raise ReplayInputError(f"--set {service}: not a re-run service (one of {', '.join(sorted(specs))})")
            for name in fields:
                if name not in spec.settings_cls.model_fields:
                    raise ReplayInputError(f"--set {service}.{name}: {spec.settings_cls.__name__} has no such field")
            try:
                spec.settings_cls(**fields)
            except ValidationError as exc:
                problems = "; ".join(f"{service}.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
                                     for err in exc.errors())
                raise ReplayInputError(f"--set {problems}") from None

    def mandate_document(self) -> dict[str, Any]:
        """The recorded mandate with the what-if changes applied, validated."""
        try:
            doc = parse_document(read_mandate_text(self.mandate_path))
        except MandateError as exc:
            raise ReplayInputError(f"--mandate: {exc}") from None
        for dotted, value in self.mandate_changes.items():
            *parents, last = dotted.split(".")
            node = doc
            for p in parents:
                child = node.get(p) if isinstance(node, dict) else None
                if not isinstance(child, dict):
                    raise ReplayInputError(f"--mandate-set {dotted}: {p!r} is not a mapping in the mandate")
                node = child
            node[last] = value
        try:
            validate_mandate(doc)
        except MandateError as exc:
            raise ReplayInputError(f"--mandate-set: the changed mandate is invalid: {exc}") from None
        return doc

    def overrides(self, workdir: Path) -> dict[str, dict[str, Any]]:
        """Per-service settings overrides for the replayed desk (a changed mandate is written into ``workdir``)."""
        out = {service: dict(fields) for service, fields in self.settings.items()}
        if self.mandate_changes:
            path = Path(workdir) / "what-if-mandate.json"
            path.write_text(json.dumps(self.mandate_document()))
            out.setdefault(MANAGER, {})["mandate_path"] = path
        elif self.mandate_path is not None:
            out.setdefault(MANAGER, {}).setdefault("mandate_path", self.mandate_path)
        return out

    def describe(self) -> dict[str, Any]:
        """JSON form for the report."""
        return {"mandate": str(self.mandate_path) if self.mandate_path else "packaged",
                "mandate_changes": self.mandate_changes, "settings": self.settings, "what_if": self.is_what_if}

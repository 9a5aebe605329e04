"""The user's mandate (brief §1): one YAML or JSON document, validated field by field.

Every refusal is a :class:`MandateError` whose message starts with the field it is about
(``max_drawdown: must be between 0 and 1``). Unknown fields are refused.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from quorum_common.runtime.config import validation_message
from quorum_common.universe import INSTRUMENTS

from quorum_manager.ensemble import EnsembleConfig

DEFAULT_MANDATE_FILE = "default_mandate.yaml"
HORIZON_UNIT_DAYS = {"d": 1, "w": 7, "m": 30, "y": 365}
"""Calendar days per horizon unit (a month counts 30 days, a year 365)."""
_HORIZON = re.compile(r"^\s*(\d+)\s*([dwmy])\s*$", re.IGNORECASE)

RiskTolerance = Literal["conservative", "moderate", "aggressive"]
Objective = Literal["Sharpe", "MinRisk", "Utility", "MaxRet"]
RiskMeasure = Literal["MDD", "CDaR"]


class MandateError(ValueError):
    """A refused mandate; ``field`` names the (first) offending field, ``problems`` lists them all."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        self.field, self.message = problems[0]
        super().__init__("; ".join(f"{f}: {m}" for f, m in problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _fraction(value: float, what: str = "", *, low_open: bool = False, high_open: bool = False) -> float:
    """Check ``value`` lies in [0, 1] (ends open as asked); ``what`` names a map entry in the message."""
    ok = math.isfinite(value) and (value > 0 if low_open else value >= 0) and (value < 1 if high_open else value <= 1)
    if not ok:
        raise ValueError(f"{what} must be between 0 and 1".strip())
    return value


class UniverseMember(_Strict):
    """One instrument the mandate may hold."""

    symbol: str = Field(min_length=1)
    sector: str = Field(min_length=1)
    asset_class: str = Field(min_length=1)
    venue: str | None = None
    max_weight: float | None = None

    @field_validator("max_weight")
    @classmethod
    def _max_weight(cls, v: float | None) -> float | None:
        return None if v is None else _fraction(v, low_open=True)


def default_universe() -> list[UniverseMember]:
    """Every tradable instrument of the bundled universe (``quorum_common.universe``)."""
    return [UniverseMember(symbol=i.symbol, sector=i.sector, asset_class=i.asset_class, venue=i.venue)
            for i in INSTRUMENTS.values() if i.tradable]


def horizon_days(horizon: str) -> int:
    """Calendar days of a horizon such as ``1y``, ``6m``, ``90d`` or ``2w``."""
    m = _HORIZON.match(horizon)
    if not m or int(m.group(1)) <= 0:
        raise ValueError("must be a positive number followed by d, w, m or y (e.g. 1y, 6m, 90d)")
    return int(m.group(1)) * HORIZON_UNIT_DAYS[m.group(2).lower()]


class Mandate(_Strict):
    """The user's whole input to the desk."""

    mandate_id: str = Field("default", min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
    capital: float = Field(gt=0, allow_inf_nan=False)
    base_currency: str = Field("USD", pattern=r"^[A-Z]{3}$")
    horizon: str
    risk_tolerance: RiskTolerance
    max_drawdown: float
    universe: list[UniverseMember] = Field(default_factory=default_universe, min_length=1)
    sector_caps: dict[str, float] = Field(default_factory=dict)
    asset_class_caps: dict[str, float] = Field(default_factory=dict)
    min_weights: dict[str, float] = Field(default_factory=dict)
    objective: Objective = "Sharpe"
    risk_measure: RiskMeasure | None = None
    risk_free_rate: float = Field(0.0, ge=0, lt=1)
    target_volatility: float | None = Field(None, gt=0, le=1, allow_inf_nan=False)
    benchmarks: list[str] | None = None
    allow_short: bool = False
    ensemble: EnsembleConfig = Field(default_factory=EnsembleConfig)

    @field_validator("risk_tolerance", mode="before")
    @classmethod
    def _lower_tolerance(cls, v: Any) -> Any:
        return v.lower() if isinstance(v, str) else v

    @field_validator("horizon")
    @classmethod
    def _horizon(cls, v: str) -> str:
        horizon_days(v)
        return v.strip()

    @field_validator("max_drawdown")
    @classmethod
    def _max_drawdown(cls, v: float) -> float:
        return _fraction(v, low_open=True, high_open=True)

    @field_validator("sector_caps", "asset_class_caps", "min_weights")
    @classmethod
    def _weights_map(cls, v: dict[str, float]) -> dict[str, float]:
        for key, w in v.items():
            _fraction(w, key)
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Mandate:
        symbols = [m.symbol for m in self.universe]
        dupes = sorted({s for s in symbols if symbols.count(s) > 1})
        if dupes:
            raise ValueError(f"universe: duplicate symbols {', '.join(dupes)}")
        sectors = {m.sector for m in self.universe}
        classes = {m.asset_class for m in self.universe}
        _known_keys("sector_caps", self.sector_caps, sectors)
        _known_keys("asset_class_caps", self.asset_class_caps, classes)
        _known_keys("min_weights", self.min_weights, sectors | classes)
        caps = {**self.sector_caps, **self.asset_class_caps}
        for key, floor in self.min_weights.items():
            if key in caps and floor > caps[key]:
                raise ValueError(f"min_weights.{key}: {floor} is above its cap {caps[key]}")
        if sum(self.min_weights.values()) > 1:
            raise ValueError("min_weights: the minimum weights sum to more than 1")
        _fully_investable("sector_caps", self.sector_caps, sectors)
        _fully_investable("asset_class_caps", self.asset_class_caps, classes)
        return self

    @property
    def horizon_days(self) -> int:
        """The horizon in calendar days."""
        return horizon_days(self.horizon)


def _known_keys(name: str, caps: dict[str, float], known: set[str]) -> None:
    unknown = sorted(set(caps) - known)
    if unknown:
        raise ValueError(f"{name}: {', '.join(unknown)} not in the universe (known: {', '.join(sorted(known))})")


def _fully_investable(name: str, caps: dict[str, float], groups: set[str]) -> None:
    if groups <= set(caps) and sum(caps[g] for g in groups) < 1:
        raise ValueError(f"{name}: every group is capped and the caps sum to less than 1 (cannot be fully invested)")


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    """(field, message) pairs of a validation error; model-level messages start with their field."""
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if p != "[key]")
        msg = {"extra_forbidden": "unknown field", "missing": "required field is missing"}.get(
            err["type"], validation_message(err))
        if not loc:
            loc, _, rest = msg.partition(": ")
            loc, msg = (loc, rest) if rest else ("mandate", msg)
        out.append((loc, msg))
    return out


def parse_document(text: str) -> dict[str, Any]:
    """The raw mapping of a YAML or JSON mandate document (JSON is YAML)."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise MandateError([("document", f"not valid YAML or JSON ({exc.__class__.__name__})")]) from None
    if not isinstance(raw, dict):
        raise MandateError([("document", "must be a mapping of mandate fields")])
    return raw


def validate_mandate(raw: dict[str, Any]) -> Mandate:
    """Validate a raw mapping into a :class:`Mandate`; :class:`MandateError` names each bad field."""
    try:
        return Mandate.model_validate(raw)
    except ValidationError as exc:
        raise MandateError(_problems(exc)) from None


def parse_mandate(text: str) -> Mandate:
    """Parse and validate a YAML or JSON mandate document."""
    return validate_mandate(parse_document(text))


def canonical_json(raw: dict[str, Any]) -> str:
    """The accepted document as canonical JSON (sorted keys), the form kept as ``source_document``."""
    return json.dumps(raw, sort_keys=True, separators=(",", ":"), default=str)


def load_mandate(path: str | Path) -> Mandate:
    """Load and validate the mandate file at ``path``."""
    return parse_mandate(read_mandate_text(path))


def read_mandate_text(path: str | Path | None = None) -> str:
    """The text of the mandate file at ``path``, or of the packaged default mandate when ``path`` is None."""
    if path is None:
        return resources.files("quorum_manager").joinpath(DEFAULT_MANDATE_FILE).read_text(encoding="utf-8")
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise MandateError([("mandate_path", f"cannot read {path}: {exc.strerror or exc}")]) from None


@dataclass(frozen=True)
class AcceptedMandate:
    """A validated mandate with the JSON form of the document and the fields the user wrote."""

    mandate: Mandate
    source_document: str
    explicit_fields: frozenset[str]


def accept_mandate(text: str) -> AcceptedMandate:
    """Parse and validate a YAML or JSON document; keep its canonical JSON and the fields it set."""
    raw = parse_document(text)
    return AcceptedMandate(validate_mandate(raw), canonical_json(raw), frozenset(raw))

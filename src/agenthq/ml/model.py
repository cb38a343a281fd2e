"""The failure model: does this attempt fail? Trained on telemetry, judged against a baseline.

The baseline is what a person would guess without a model: this agent's failure rate so far.
`train` fits two scikit-learn classifiers (histogram gradient boosting and a random forest) on
the oldest 64 % of the history, keeps the one with the better ROC-AUC on the next 16 % (where
its decision threshold is chosen too), and reports it — and the baseline — on the newest 20 %,
which it never saw: a time-ordered split, because a model is always used on the future.

A model is stored with skops (a format that is read without running code, unlike pickle):
`failure.skops` next to `failure.json`, which holds its training data range, metrics, chosen
threshold, library versions and the file's SHA-256. `load` refuses a file whose digest does not
match or which holds a type outside scikit-learn and NumPy. A model is *used* only while it is
younger than `max_age_days` and beat the baseline on its latest evaluation (`usable`).

scikit-learn, skops and NumPy come with the `learn` extra and are imported only here.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from agenthq.errors import LearningError
from agenthq.ml.features import CATEGORICAL, NUMERIC, derive
from agenthq.store.api import TelemetryRow

__all__ = [
    "MIN_ROWS",
    "Evaluation",
    "Metrics",
    "ModelMeta",
    "TrainedModel",
    "evaluate",
    "importances",
    "load",
    "save",
    "train",
]

MODEL_FILE = "failure.skops"
META_FILE = "failure.json"
MIN_ROWS = 200  # fewer finished attempts than this teach nothing a baseline does not know
MIN_CLASS = 10  # …and at least this many failures and successes in training and in test
TEST_SHARE = 0.2
VALIDATION_SHARE = 0.2  # of the training part: picks the classifier and the threshold
COLUMNS = (*CATEGORICAL, *NUMERIC)
TIE = 0.01  # validation ROC-AUC closer than this is a tie
_TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.")


def _learn() -> Any:
    try:
        import numpy
        import sklearn
        import skops
    except ImportError as exc:
        raise LearningError(
            f"the failure model needs scikit-learn and skops ({exc.name} is missing): "
            "pip install 'agenthq[learn]'"
        ) from None
    return numpy, sklearn, skops


@dataclass(frozen=True)
class Metrics:
    roc_auc: float
    pr_auc: float
    f1: float
    brier: float
    threshold: float
    rows: int
    failures: int


@dataclass(frozen=True)
class ModelMeta:
    kind: str  # hist_gradient_boosting | random_forest
    created_at: float
    data_from: float  # the first and last start in the training data
    data_to: float
    test_from: float  # held out: attempts started at or after this were not trained on
    train_rows: int
    threshold: float
    model: Metrics
    baseline: Metrics
    selection: Mapping[str, float]  # validation ROC-AUC of each candidate
    versions: Mapping[str, str]
    features: Sequence[str] = COLUMNS
    sha256: str = ""
    evaluated_at: float = 0.0
    train_seconds: float = 0.0

    @property
    def beats_baseline(self) -> bool:
        return self.model.roc_auc > self.baseline.roc_auc

    def usable(self, now: float, max_age_days: float) -> tuple[bool, str]:
        """Whether the risk gate may use it, and why (not)."""
        age_days = (now - self.created_at) / 86400.0
        if age_days > max_age_days:
            return False, (
                f"trained {age_days:.0f} days ago, older than max_age_days={max_age_days:g}: "
                "retrain with `agenthq model train`"
            )
        if not self.beats_baseline:
            return False, (
                f"ROC-AUC {self.model.roc_auc:.3f} does not beat the baseline's "
                f"{self.baseline.roc_auc:.3f}"
            )
        return True, (
            f"ROC-AUC {self.model.roc_auc:.3f} vs baseline {self.baseline.roc_auc:.3f}, "
            f"{age_days:.1f} days old"
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> ModelMeta:
        try:
            values = dict(data)
            values["model"] = Metrics(**values["model"])
            values["baseline"] = Metrics(**values["baseline"])
            values["features"] = tuple(values.get("features", COLUMNS))
            return ModelMeta(**values)
        except (KeyError, TypeError) as exc:
            raise LearningError(f"{META_FILE} is not a model description ({exc})") from None


@dataclass(frozen=True)
class TrainedModel:
    pipeline: Any  # a fitted sklearn Pipeline: raw feature columns → probability of failure
    meta: ModelMeta

    def predict_many(self, features: Sequence[Mapping[str, Any]]) -> list[float]:
        numpy, _, _ = _learn()
        if not features:
            return []
        probabilities = self.pipeline.predict_proba(_matrix(numpy, features))
        return [float(p) for p in probabilities[:, 1]]


@dataclass(frozen=True)
class Dataset:
    features: list[dict[str, Any]]
    failed: list[int]
    baseline: list[float]  # the agent's failure rate before each attempt
    started: list[float]

    def __len__(self) -> int:
        return len(self.failed)

    def slice(self, start: int, stop: int | None = None) -> Dataset:
        return Dataset(
            self.features[start:stop],
            self.failed[start:stop],
            self.baseline[start:stop],
            self.started[start:stop],
        )


def dataset(rows: Iterable[TelemetryRow]) -> Dataset:
    """Finished attempts (not cancelled ones) with their leakage-free features, oldest first."""
    data = Dataset([], [], [], [])
    for row, features in derive(rows):
        if row.outcome not in ("succeeded", "failed"):
            continue
        data.features.append(features)
        data.failed.append(int(row.outcome == "failed"))
        data.baseline.append(float(features["agent_failure_rate"]))
        data.started.append(row.started_at)
    return data


@dataclass(frozen=True)
class Evaluation:
    model: Metrics
    baseline: Metrics
    failed: Sequence[int] = field(repr=False)
    predicted: Sequence[float] = field(repr=False)
    baseline_predicted: Sequence[float] = field(repr=False)
    part: Dataset | None = field(default=None, repr=False)  # the attempts it was scored on


def train(rows: Iterable[TelemetryRow], *, now: float | None = None, seed: int = 0) -> TrainedModel:
    """Fit, choose and evaluate on a time-ordered split (see the module docstring)."""
    numpy, sklearn, skops = _learn()
    began = time.perf_counter()
    data = dataset(rows)
    _check_enough(data, len(data), "history")
    test_at = int(len(data) * (1 - TEST_SHARE))
    train_part, test_part = data.slice(0, test_at), data.slice(test_at)
    valid_at = int(len(train_part) * (1 - VALIDATION_SHARE))
    fit_part, valid_part = train_part.slice(0, valid_at), train_part.slice(valid_at)
    for name, part in (("training", fit_part), ("validation", valid_part), ("test", test_part)):
        _check_classes(part, name)
    selection: dict[str, float] = {}
    fitted: dict[str, tuple[Any, list[float]]] = {}
    best: tuple[float, str] | None = None
    for kind in ("hist_gradient_boosting", "random_forest"):
        pipeline = _pipeline(kind, seed)
        pipeline.fit(_matrix(numpy, fit_part.features), fit_part.failed)
        probabilities = pipeline.predict_proba(_matrix(numpy, valid_part.features))[:, 1]
        predicted = [float(p) for p in probabilities]
        fitted[kind] = (pipeline, predicted)
        auc = _roc_auc(valid_part.failed, predicted)
        selection[kind] = round(auc, 4)
        # A forest must be clearly better to be chosen: boosting scores a step 4x faster.
        if best is None or auc > best[0] + TIE:
            best = (auc, kind)
    assert best is not None
    kind = best[1]
    # The chosen model is kept as fitted, not refitted on the validation part too: its
    # threshold was chosen on its own answers, and a refit would shift them.
    pipeline, valid_predicted = fitted[kind]
    threshold = _best_threshold(valid_part.failed, valid_predicted)
    baseline_threshold = _best_threshold(valid_part.failed, valid_part.baseline)
    model = TrainedModel(
        pipeline,
        ModelMeta(
            kind=kind,
            created_at=now if now is not None else time.time(),
            data_from=fit_part.started[0],
            data_to=fit_part.started[-1],
            test_from=test_part.started[0],
            train_rows=len(fit_part),
            threshold=threshold,
            model=_empty_metrics(),
            baseline=_empty_metrics(),
            selection=selection,
            versions=_versions(numpy, sklearn, skops),
        ),
    )
    result = _score(model, test_part, baseline_threshold)
    meta = replace(
        model.meta,
        model=result.model,
        baseline=result.baseline,
        evaluated_at=model.meta.created_at,
        train_seconds=round(time.perf_counter() - began, 3),
    )
    return TrainedModel(pipeline, meta)


def evaluate(
    model: TrainedModel, rows: Iterable[TelemetryRow], *, now: float | None = None
) -> tuple[TrainedModel, Evaluation]:
    """Score the model and the baseline on every attempt started since its held-out range
    began (the held-out part and anything newer): the model's meta gets the new figures."""
    data = dataset(rows)
    start = next((i for i, at in enumerate(data.started) if at >= model.meta.test_from), len(data))
    held_out = data.slice(start)
    _check_enough(held_out, len(held_out), "held-out history", minimum=MIN_CLASS * 2)
    _check_classes(held_out, "held-out")
    result = _score(model, held_out, model.meta.baseline.threshold)
    meta = replace(
        model.meta,
        model=result.model,
        baseline=result.baseline,
        evaluated_at=now if now is not None else time.time(),
    )
    return TrainedModel(model.pipeline, meta), result


# ---- storing -----------------------------------------------------------------------------------


def save(model: TrainedModel, directory: Path) -> Path:
    """Write `failure.skops` and `failure.json` atomically; returns the model file's path."""
    _, _, _ = _learn()
    import skops.io

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / MODEL_FILE
    temporary = directory / f".{MODEL_FILE}.{os.getpid()}"
    skops.io.dump(model.pipeline, temporary)
    digest = hashlib.sha256(temporary.read_bytes()).hexdigest()
    os.replace(temporary, path)
    write_meta(replace(model.meta, sha256=digest), directory)
    return path


def write_meta(meta: ModelMeta, directory: Path) -> None:
    temporary = directory / f".{META_FILE}.{os.getpid()}"
    temporary.write_text(json.dumps(meta.to_json(), indent=2, sort_keys=True) + "\n")
    os.replace(temporary, directory / META_FILE)


def read_meta(directory: Path) -> ModelMeta | None:
    """The saved model's description, without loading it (no scikit-learn needed)."""
    path = directory / META_FILE
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        return ModelMeta.from_json(json.loads(text))
    except json.JSONDecodeError as exc:
        raise LearningError(
            f"{path} is not JSON ({exc}); retrain with `agenthq model train`"
        ) from None


def load(directory: Path) -> TrainedModel:
    """The saved model; LearningError when there is none, it was changed after it was saved, or
    it holds a type outside scikit-learn/NumPy/SciPy (skops then refuses to build it)."""
    _learn()
    import skops.io

    meta = read_meta(directory)
    path = directory / MODEL_FILE
    if meta is None or not path.exists():
        raise LearningError(f"no model in {directory}: train one with `agenthq model train`")
    content = path.read_bytes()
    if hashlib.sha256(content).hexdigest() != meta.sha256:
        raise LearningError(
            f"{path} does not match the digest in {META_FILE}: it was changed after training; "
            "retrain with `agenthq model train`"
        )
    untrusted = skops.io.get_untrusted_types(data=content)
    foreign = [t for t in untrusted if not t.startswith(_TRUSTED_PREFIXES)]
    if foreign:
        raise LearningError(
            f"{path} holds types agenthq does not load: {', '.join(sorted(foreign))}"
        )
    pipeline = skops.io.loads(content, trusted=untrusted)
    if "n_jobs" in pipeline.named_steps["classify"].get_params():
        # One step at a time: starting worker threads would cost more than the trees.
        pipeline.set_params(classify__n_jobs=1)
    return TrainedModel(pipeline, meta)


# ---- internals ---------------------------------------------------------------------------------


def _pipeline(kind: str, seed: int) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    encode = ColumnTransformer(
        [
            (
                "categories",
                OneHotEncoder(
                    handle_unknown="infrequent_if_exist",
                    min_frequency=5,
                    max_categories=40,
                    sparse_output=False,
                ),
                list(range(len(CATEGORICAL))),
            )
        ],
        remainder="passthrough",
    )
    estimator: Any
    if kind == "hist_gradient_boosting":
        estimator = HistGradientBoostingClassifier(
            max_iter=200, learning_rate=0.08, l2_regularization=1.0, random_state=seed
        )
    else:
        # 40 trees: a forest scores one row tree by tree in Python, ~60 µs each, and one
        # step must be scored in well under 5 ms.
        estimator = RandomForestClassifier(
            n_estimators=40, min_samples_leaf=5, max_depth=14, n_jobs=-1, random_state=seed
        )
    return Pipeline([("encode", encode), ("classify", estimator)])


def _matrix(numpy: Any, features: Sequence[Mapping[str, Any]]) -> Any:
    return numpy.array([[f[c] for c in COLUMNS] for f in features], dtype=object)


def _score(model: TrainedModel, part: Dataset, baseline_threshold: float) -> Evaluation:
    predicted = model.predict_many(part.features)
    return Evaluation(
        model=_metrics(part.failed, predicted, model.meta.threshold),
        baseline=_metrics(part.failed, part.baseline, baseline_threshold),
        failed=part.failed,
        predicted=predicted,
        baseline_predicted=part.baseline,
        part=part,
    )


def importances(
    model: TrainedModel, part: Dataset, limit: int = 5000
) -> tuple[list[str], list[float], list[float]]:
    """Permutation importance of each input column — how much ROC-AUC drops when it is
    shuffled — on the newest `limit` attempts of `part` (an evaluation's held-out attempts)."""
    numpy, _, _ = _learn()
    from sklearn.inspection import permutation_importance

    newest = part.slice(max(0, len(part) - limit))
    result = permutation_importance(
        model.pipeline,
        _matrix(numpy, newest.features),
        newest.failed,
        scoring="roc_auc",
        n_repeats=5,
        random_state=0,
    )
    return (
        list(COLUMNS),
        [float(v) for v in result.importances_mean],
        [float(v) for v in result.importances_std],
    )


def _metrics(failed: Sequence[int], predicted: Sequence[float], threshold: float) -> Metrics:
    from sklearn.metrics import average_precision_score, brier_score_loss, f1_score

    chosen = [int(p >= threshold) for p in predicted]
    return Metrics(
        roc_auc=round(_roc_auc(failed, predicted), 4),
        pr_auc=round(float(average_precision_score(failed, predicted)), 4),
        f1=round(float(f1_score(failed, chosen, zero_division=0)), 4),
        brier=round(float(brier_score_loss(failed, predicted)), 4),
        threshold=round(threshold, 4),
        rows=len(failed),
        failures=int(sum(failed)),
    )


def _roc_auc(failed: Sequence[int], predicted: Sequence[float]) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(failed, predicted))


def _best_threshold(failed: Sequence[int], predicted: Sequence[float]) -> float:
    """The probability above which an attempt is called a failure: the best F1 on the
    validation part (ties: the higher threshold, which asks people less often)."""
    from sklearn.metrics import precision_recall_curve

    precision, recall, thresholds = precision_recall_curve(failed, predicted)
    best, best_f1 = 0.5, -1.0
    for p, r, t in zip(precision[:-1], recall[:-1], thresholds, strict=True):
        f1 = 0.0 if p + r == 0 else 2 * p * r / (p + r)
        if f1 >= best_f1:
            best, best_f1 = float(t), f1
    return best


def _check_enough(data: Dataset, rows: int, what: str, minimum: int = MIN_ROWS) -> None:
    if rows < minimum:
        raise LearningError(
            f"the {what} has {rows} finished attempts; at least {minimum} are needed "
            "(run more plans, then train again)"
        )


def _check_classes(part: Dataset, name: str) -> None:
    failures = sum(part.failed)
    successes = len(part.failed) - failures
    if failures < MIN_CLASS or successes < MIN_CLASS:
        raise LearningError(
            f"the {name} part of the history has {failures} failed and {successes} succeeded "
            f"attempts; each needs at least {MIN_CLASS} to learn and judge a model"
        )


def _empty_metrics() -> Metrics:
    return Metrics(0.0, 0.0, 0.0, 0.0, 0.5, 0, 0)


def _versions(numpy: Any, sklearn: Any, skops: Any) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    try:
        agenthq_version = version("agenthq")
    except PackageNotFoundError:
        agenthq_version = "unknown"
    return {
        "agenthq": agenthq_version,
        "scikit-learn": sklearn.__version__,
        "skops": skops.__version__,
        "numpy": numpy.__version__,
    }

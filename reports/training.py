"""Trained attack models: a table line and a training curve per model.

A fine-tuned recognizer has a validation EER per epoch and a kept epoch, an
image-reconstruction model a validation loss. ``results["trained_models"]``
is optional: results files written before it lack it, and a malformed entry
shows what it can rather than failing the whole report.

A model that stopped on a budget (``stopped: budget``) rather than on a
validation plateau is flagged, and so is every row of its attack
(:func:`not_converged`): the attack may be stronger than its rows say.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from benchmark.engine.results import stopped_on_budget
from reports.export import Collector, Estimate, Table
from reports.formatting import (
    DASH,
    as_text,
    format_count,
    format_metric,
    format_params,
    format_plain,
    is_number,
    mappings,
    optional_number,
    or_default,
)
from reports.plots import recognizer_training_figure, training_curve_figure

__all__ = [
    "NOT_CONVERGED",
    "attacker_overlap",
    "is_recognizer_model",
    "not_converged",
    "stop_text",
    "trained_models",
    "trained_models_export",
]

#: The flag of a row (or model) whose learned attack stopped on a budget, not on a validation plateau.
NOT_CONVERGED = "not converged: the attack may be stronger"


def _format_duration(seconds: Any) -> str:
    if not (is_number(seconds) and math.isfinite(seconds)) or seconds < 0:
        return DASH
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _format_loss(value: float | None) -> str:
    return DASH if value is None else format_plain(value)


def is_recognizer_model(model: Mapping[str, Any]) -> bool:
    """Whether ``model`` is a fine-tuned recognizer; files written before recognizer attacks lack ``kind``.

    Args:
        model: One entry of ``results["trained_models"]``.

    Returns:
        True for a recognizer attack's model, False for an image-reconstruction one.
    """
    return model.get("kind") == "recognizer"


def _training_title(model: Mapping[str, Any]) -> str:
    group = model.get("group")
    # A model trained on settings other than the one attacked has no scheme;
    # ``trained_on`` then names them.
    setting = as_text(model.get("scheme")) or as_text(model.get("trained_on"))
    attack = as_text(model.get("attack"))
    title = f"{attack} on {setting}" if setting else attack
    return title if group is None else f"{title} (group {group})"


def _recognizer_history(model: Mapping[str, Any], title: str, out: Collector) -> dict[str, Any]:
    """Training curve and validation summary of a fine-tuned recognizer's history.

    Epoch 0 is the pretrained model (validation EER, no loss); the ``kept``
    epoch is the one whose weights the attack used.
    """
    history = mappings(model.get("history"))
    # An entry without a usable epoch number is taken to be the next epoch, counting from 0.
    epochs = [or_default(optional_number(h.get("epoch")), float(i)) for i, h in enumerate(history)]
    # Only trained epochs have a loss, whatever an epoch-0 entry says.
    loss = [optional_number(h.get("loss")) if e >= 1 else None for e, h in zip(epochs, history)]
    val_eer = [optional_number(h.get("val_eer")) for h in history]
    kept = next((i for i, h in enumerate(history) if h.get("kept") is True), None)
    uri = None
    if any(v is not None for v in [*loss, *val_eer]):
        fig = partial(
            recognizer_training_figure,
            epochs,
            loss,
            val_eer,
            kept_epoch=None if kept is None else epochs[kept],
            title=title,
        )
        uri = out.figure("training", title, fig)
    final = val_eer[kept] if kept is not None and val_eer[kept] is not None else None
    if final is None:
        final = next((v for v in reversed(val_eer) if v is not None), None)
    summary = DASH if final is None else f"EER {format_metric('eer', final)}"
    kept_text = ""
    if kept is not None:
        kept_text = f"epoch {epochs[kept]:g}" + (" (pretrained)" if epochs[kept] == 0 else "")
        summary = f"{summary}, kept {kept_text}"
    return {"uri": uri, "final_val": summary, "kept": kept_text, "final_raw": final}


def _reconstruction_history(model: Mapping[str, Any], title: str, out: Collector) -> dict[str, Any]:
    """Training curve and last validation loss of an image-reconstruction model's history."""
    history = mappings(model.get("history"))
    # An entry without a usable epoch number is taken to be the next epoch.
    epochs = [or_default(optional_number(h.get("epoch")), float(i + 1)) for i, h in enumerate(history)]
    loss = [optional_number(h.get("loss")) for h in history]
    val_loss = [optional_number(h.get("val_loss")) for h in history]
    uri = None
    if any(v is not None for v in [*loss, *val_loss]):
        uri = out.figure("training", title, partial(training_curve_figure, epochs, loss, val_loss, title=title))
    final = next((v for v in reversed(val_loss) if v is not None), None)
    return {"uri": uri, "final_val": _format_loss(final), "kept": "", "final_raw": final}


def stop_text(model: Mapping[str, Any]) -> str:
    """Why a trained model stopped, in words (a dash when its entry does not say: files before plateau stopping).

    Args:
        model: One entry of ``results["trained_models"]``.

    Returns:
        ``converged`` with the epochs trained and kept, or the budget that ran
        out (a minutes budget is marked as depending on the machine).
    """
    stopped = model.get("stopped")
    raw = model.get("params")
    params: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    detail = []
    if is_number(model.get("epochs")):
        detail.append(f"{format_count(model.get('epochs'))} epochs")
    if is_number(model.get("best_epoch")):
        detail.append(f"kept epoch {format_count(model.get('best_epoch'))}")
    if stopped == "converged":
        head = "converged (validation plateau)"
    elif stopped == "budget" and model.get("budget") == "minutes":
        limit = optional_number(params.get("max_minutes"))
        head = "budget: minutes" if limit is None else f"budget: {format_plain(limit)} min"
        detail.append("machine-dependent")
    elif stopped == "budget":
        limit = params.get("max_epochs") if params.get("epochs") is None else params.get("epochs")
        head = f"budget: {format_count(limit)} epochs" if is_number(limit) else "budget: epochs"
    else:
        return DASH
    return head + (f" ({'; '.join(detail)})" if detail else "")


def not_converged(block: Any) -> Callable[[Any, Any], str]:
    """A lookup: a row's (scheme, attack) -> :data:`NOT_CONVERGED` where a model of its attack stopped on a budget.

    A model trained under the setting attacked flags that scheme's rows of its
    attack; one trained on listed settings (no ``scheme``) serves every
    scheme, so it flags all rows of its attack.

    Args:
        block: ``results["trained_models"]``.

    Returns:
        ``flag(scheme, attack)``: the flag text, or "" (also for rows of no learned attack).
    """
    flagged = stopped_on_budget(block)

    def flag(scheme: Any, attack: Any) -> str:
        name = as_text(attack)
        return NOT_CONVERGED if (as_text(scheme), name) in flagged or (None, name) in flagged else ""

    return flag


def _trained_model(model: Mapping[str, Any], out: Collector) -> dict[str, Any]:
    """One trained attack model: its table line and its training curve (None without history).

    A fine-tuned recognizer (``kind`` ``recognizer``) has a validation EER
    and a kept epoch where an image-reconstruction model has a validation loss.
    """
    title = _training_title(model)
    recognizer = is_recognizer_model(model)
    drawn = (_recognizer_history if recognizer else _reconstruction_history)(model, title, out)
    params = model.get("params")
    cached = model.get("cached")
    return {
        "attack": as_text(model.get("attack")),
        "kind": "recognizer" if recognizer else "reconstruction",
        # Where no scheme is recorded the model was trained on other settings: name those.
        "scheme": as_text(model.get("scheme")) or as_text(model.get("trained_on")),
        "trained_on": as_text(model.get("trained_on")),
        "kept": drawn["kept"],
        "group": as_text(model.get("group")) or DASH,
        "train_faces": format_count(model.get("n_train_faces")),
        "train_subjects": format_count(model.get("n_train_subjects")),
        "val_faces": format_count(model.get("n_val_faces")),
        "keys_per_face": format_count(model.get("keys_per_face")),
        "pairs": format_count(model.get("n_pairs")),
        "device": as_text(model.get("device")) or DASH,
        "time": _format_duration(model.get("seconds")),
        "cached": DASH if cached is None else "yes" if cached else "no",
        "final_val_loss": drawn["final_val"],
        "stopped": stop_text(model),
        "not_converged": NOT_CONVERGED if model.get("stopped") == "budget" else "",
        "params": format_params(params) if isinstance(params, Mapping) else as_text(params),
        "title": title,
        "uri": drawn["uri"],
        "final_value": drawn["final_raw"],
    }


def trained_models(block: Any, out: Collector) -> list[dict[str, Any]]:
    """Display lines (and training curves) of ``results["trained_models"]``, in its order.

    Args:
        block: ``results["trained_models"]``.
        out: Collector of the training curves.

    Returns:
        One table line per model, with its curve's ``title`` and ``uri``
        (None without history).
    """
    return [_trained_model(model, out) for model in mappings(block)]


def trained_models_export(block: Any, lines: Sequence[Mapping[str, Any]]) -> Table | None:
    """The trained-models table as plain data (numbers raw, the training time in seconds).

    Args:
        block: ``results["trained_models"]``.
        lines: Its display lines (:func:`trained_models`).

    Returns:
        The table, None without models.
    """
    models = mappings(block)
    if not models:
        return None
    header = [
        "Attack",
        "Kind",
        "Scheme or training settings",
        "Group",
        "Train faces",
        "Train subjects",
        "Val faces",
        "Keys per face",
        "Pairs",
        "Device",
        "Training time (s)",
        "Cached",
        "Final validation",
        "Kept",
        "Stopped",
        "Epochs",
        "Parameters",
    ]
    rows = [
        [
            line["attack"],
            line["kind"],
            line["scheme"],
            optional_number(model.get("group")),
            *(optional_number(model.get(k)) for k in ("n_train_faces", "n_train_subjects", "n_val_faces")),
            *(optional_number(model.get(k)) for k in ("keys_per_face", "n_pairs")),
            as_text(model.get("device")),
            optional_number(model.get("seconds")),
            line["cached"],
            Estimate(line["final_value"], key="eer" if line["kind"] == "recognizer" else ""),
            line["kept"],
            as_text(model.get("stopped")) + (f" ({as_text(model.get('budget'))})" if model.get("budget") else ""),
            optional_number(model.get("epochs")),
            line["params"],
        ]
        for model, line in zip(models, lines)
    ]
    keys = ["", "", "", "n_group", "n_train", "n_subjects", "n_val", "n_keys", "n_pairs"]
    return Table("Trained models", header, rows, keys)


def attacker_overlap(block: Any) -> dict[str, Any] | None:
    """What the face check of a separate attacker dataset found (``results["attacker"]["overlap"]``).

    Args:
        block: ``results["attacker"]``; files written before the check, or with
            ``source: folds``, have no ``overlap`` (None then).

    Returns:
        ``summary`` (one sentence: the rule and what was done) and ``matches``
        (attacker subject, victim subject, score, identical faces), or None.
    """
    overlap = block.get("overlap") if isinstance(block, Mapping) else None
    if not isinstance(overlap, Mapping):
        return None
    matches = mappings(overlap.get("matches"))
    threshold = optional_number(overlap.get("threshold"))
    recognizer = as_text(overlap.get("recognizer"))
    if threshold is None:
        rule = "identical faces only (no recognizer compared faces)"
    else:
        fmr = optional_number(overlap.get("fmr"))
        rule = (
            f"median {recognizer} score of a subject pair above {format_plain(threshold)}, the threshold at FMR "
            f"{'—' if fmr is None else f'{fmr:g}'} of the victims' {format_count(overlap.get('n_impostor'))} "
            "impostor scores"
        )
        if overlap.get("fmr_supported") is False:
            rule += " (too few for that FMR: their maximum)"
        rule += ", or an identical face"
    dropped = overlap.get("policy") == "drop" and matches
    done = f"; {format_count(overlap.get('n_faces_dropped'))} of their faces dropped before training" if dropped else ""
    summary = f"{len(matches)} attacker subject(s) matched a victim subject by face: {rule}{done}."
    lines = [
        {
            "attacker": as_text(m.get("attacker_subject")),
            "victim": as_text(m.get("victim_subject")),
            "score": DASH if optional_number(m.get("score")) is None else format_plain(float(m["score"])),
            "identical": format_count(m.get("n_identical")),
        }
        for m in matches
    ]
    return {"summary": summary, "matches": lines}

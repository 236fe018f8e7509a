"""``finetune``: a recognizer fine-tuned on protected faces (ICPR 2022).

The attacker starts from a pretrained recognizer (SFace, written out in torch
by :mod:`benchmark.recognizers.sface_torch`), protects its *own* faces under
its *own* keys, runs a keyless attack on them (the ``naive`` decode by
default) and fine-tunes the recognizer to tell its subjects apart with a
margin-based softmax head (ArcFace or CosFace). The product is a recognizer:
the harness evaluates the victims' protected samples with it (strength:
protected probe vs plain reference; linkage: key A vs key B) beside the rows
of the pretrained model.

The settings it trains under are a parameter (``train_on``): none means the
setting under attack ("identical encryption"); a list of scheme settings
trains one model for every setting attacked, which is how the generalisation
matrix of ``protocols/finetune-generalisation.yaml`` mismatches training and
test settings.

CPU budget (see the README): only the last ``train_blocks`` stages and the
embedding layer train; the frozen trunk's outputs are computed once per fit
(by onnxruntime on the CPU, about twice as fast as torch there, and by torch
on a GPU) and kept in float16, and BatchNorm statistics stay frozen (eval
mode), so an epoch costs the trainable part only. ``train_blocks: 14``
fine-tunes the whole network (meant for a GPU).

The margin heads are written by hand (about 25 lines): libraries that ship
them (insightface's training code, pytorch-metric-learning) bring training
frameworks this project does not otherwise need.

Validation: whole attacker subjects are held out (the attacker block's
``validation``); after every epoch the verification EER of the comparisons
the model is judged on is measured: a protected probe of one held-out face
against the plain reference of every *other* held-out face (never a face with
itself), both sides embedded by the model being trained, as the harness's
strength view does with the victims (:func:`probe_reference_eer`). The
weights of the best epoch are kept, epoch 0 (the pretrained model) included:
a fine-tune that does not help on held-out identities leaves the pretrained
recognizer, and its history says so.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from attacks.learned import (
    DEFAULT_LR_PATIENCE,
    DEFAULT_MAX_EPOCHS,
    DEFAULT_MAX_MINUTES,
    DEFAULT_MIN_DELTA,
    DEFAULT_MIN_DELTA_MODE,
    DEFAULT_PATIENCE,
    LEARNING_CONSTRAINTS,
    Stopping,
    check_budget,
    check_train_on,
    input_attack_named,
    learned_label,
    listed_settings,
)
from benchmark.core.component import (
    Attack,
    InstanceOf,
    Interval,
    Nullable,
    Options,
    RecognizerAttack,
    check_faces,
)
from benchmark.core.parallel import progress
from benchmark.core.registry import ATTACKS
from benchmark.metrics.verification import eer
from benchmark.recognizers.onnx import SFACE_DIM, l2_normalise, sface_session
from benchmark.recognizers.sface_torch import SFACE_STAGES, load_sface_torch

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["FineTuneAttack", "margin_logits", "pair_eer", "probe_reference_eer"]

log = logging.getLogger("facesec.progress")

_N_STAGES = len(SFACE_STAGES) + 1  # the stem and the depthwise-separable stages
_CPU_BLOCKS = 2  # default trainable stages on the CPU: an epoch of 1,600 faces in about 15 s on 2 cores
_TRUNK_BATCH = 64
_MAX_VAL_FACES = 1000  # all pairs of at most this many faces (half a million comparisons)


@functools.lru_cache(maxsize=4)
def _trunk_session(stop: int, threads: int) -> Any:
    """An onnxruntime session ending at stage ``stop``'s output, built once per process.

    Every fit and every embedding (one per model and image set) reads the
    frozen trunk; building the session (load, prune, optimise) costs about a
    second each time.
    """
    return sface_session(threads=threads, output=f"conv_{stop}_relu")


def margin_logits(cos: torch.Tensor, labels: torch.Tensor, kind: str, scale: float, margin: float) -> torch.Tensor:
    """Logits of a margin-based softmax head from cosines (N, C) to the class centres.

    ``arcface`` adds ``margin`` to the angle of the true class (Deng et al.,
    CVPR 2019), ``cosface`` subtracts it from its cosine (Wang et al., CVPR
    2018); both scale by ``scale``. Where ``theta + margin`` would pass pi the
    ArcFace target falls back to ``cos(theta) - margin * sin(margin)`` to stay
    monotonic, as in the reference implementation.
    """
    import torch

    target = cos.gather(1, labels[:, None])
    if kind == "arcface":
        sin = torch.sqrt((1.0 - target**2).clamp_min(1e-7))
        shifted = target * math.cos(margin) - sin * math.sin(margin)
        shifted = torch.where(target > math.cos(math.pi - margin), shifted, target - margin * math.sin(margin))
    else:
        shifted = target - margin
    return scale * cos.scatter(1, labels[:, None], shifted)


def pair_eer(features: np.ndarray, labels: np.ndarray) -> float | None:
    """Verification EER over all pairs of unit-norm features (None without a mated and a non-mated pair)."""
    n = len(features)
    if n < 3:
        return None
    i, j = np.triu_indices(n, 1)
    scores = np.einsum("ij,ij->i", features[i], features[j])
    mated = labels[i] == labels[j]
    if not mated.any() or mated.all():
        return None
    return float(eer(scores[mated], scores[~mated]))


def probe_reference_eer(probes: np.ndarray, references: np.ndarray, labels: np.ndarray) -> float | None:
    """Verification EER of probe ``i`` against reference ``j`` for every ``i != j`` (unit-norm features).

    ``probes[i]`` and ``references[i]`` are two renderings of the same face
    (protected and plain); the diagonal would compare a face with itself and
    is left out. None without a mated and a non-mated pair.
    """
    n = len(probes)
    if n < 2 or len(references) != n or len(labels) != n:
        return None
    scores = probes @ references.T
    labels = np.asarray(labels)
    off = ~np.eye(n, dtype=bool)
    mated = (labels[:, None] == labels[None, :]) & off
    nonmated = (labels[:, None] != labels[None, :]) & off
    if not mated.any() or not nonmated.any():
        return None
    return float(eer(scores[mated], scores[nonmated]))


@ATTACKS.register("finetune")
class FineTuneAttack(RecognizerAttack):
    """A pretrained recognizer fine-tuned on the attacker's protected faces, with a margin head.

    Args:
        input: Registered attack (keyless, or ``invert`` with the victim's key) whose output the recognizer learns
            from and is shown (``naive`` decode by default).
        base: Pretrained model: ``sface`` (its rows stand beside the
            protocol's ``sface`` or ``sface-torch`` rows).
        train_on: Scheme settings the attacker trains under, a list of
            ``{name: ..., params: {...}}``; none (the default) trains under
            the setting attacked.
        train_blocks: Trainable stages counted from the end (1-14; 14 is the
            whole network), always with the embedding layer. None (the
            default): 2 on the CPU, the whole network on a GPU.
        head: Margin-based softmax: ``arcface`` (additive angular margin) or ``cosface``.
        scale: Logit scale of the head.
        margin: Margin of the head (radians for ArcFace, cosine for CosFace).
        max_epochs: Budget in passes over the training faces.
        max_minutes: Budget in wall-clock minutes, the frozen trunk's pass
            included (None: none); checked after each epoch. A model it stops
            is not reproducible bit for bit (it depends on the machine).
        patience: Epochs without improvement of the validation EER (on the
            best so far, the pretrained model's included) before stopping
            (a plateau: ``converged``).
        min_delta: Least improvement that counts (a fraction of the best
            validation EER when ``min_delta_mode`` is ``relative``, else an amount).
        min_delta_mode: ``relative`` or ``absolute``.
        lr_patience: Flat epochs after which the learning rates are halved
            (again every as many; None: constant rates).
        epochs: Deprecated alias of ``max_epochs``.
        batch_size: Faces per optimiser step.
        learning_rate: Adam step size of the network (the head's class centres use ten times it).
        seed: Seeds the head, batch order and dropout-free training.
        device: ``auto`` (a GPU when present), ``cpu`` or ``cuda``; CPU results are the reference.
    """

    knowledge = (
        "protected samples and scheme parameters (Kerckhoffs); no victim key; "
        "fine-tunes a pretrained recognizer on its own faces protected under its own keys"
    )
    recognizers = ("sface", "sface-torch")
    min_train_faces = 16
    _constraints = {
        **LEARNING_CONSTRAINTS,
        "base": Options(("sface",)),
        "train_on": Nullable(InstanceOf((list,))),
        "train_blocks": Nullable(Interval(int, 1, _N_STAGES)),
        "head": Options(("arcface", "cosface")),
        "scale": Interval(float, 0, 1000, closed="right"),
        "margin": Interval(float, 0, 1.5),
        "batch_size": Interval(int, 2, 65_536),
    }

    def __init__(
        self,
        *,
        input: str = "naive",  # noqa: A002 - the protocol's name for it
        base: str = "sface",
        train_on: list[dict[str, Any]] | None = None,
        train_blocks: int | None = None,
        head: str = "arcface",
        scale: float = 32.0,
        margin: float = 0.5,
        max_epochs: int = DEFAULT_MAX_EPOCHS,
        max_minutes: float | None = DEFAULT_MAX_MINUTES,
        patience: int = DEFAULT_PATIENCE,
        min_delta: float = DEFAULT_MIN_DELTA,
        min_delta_mode: str = DEFAULT_MIN_DELTA_MODE,
        lr_patience: int | None = DEFAULT_LR_PATIENCE,
        epochs: int | None = None,
        batch_size: int = 64,
        learning_rate: float = 1e-4,
        seed: int = 0,
        device: str = "auto",
    ) -> None:
        self.input = input
        self.base = base
        self.train_on = train_on
        self.train_blocks = train_blocks
        self.head = head
        self.scale = scale
        self.margin = margin
        self.max_epochs = max_epochs
        self.max_minutes = max_minutes
        self.patience = patience
        self.min_delta = min_delta
        self.min_delta_mode = min_delta_mode
        self.lr_patience = lr_patience
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.seed = seed
        self.device = device

    def _validate_extra(self) -> None:
        input_attack_named(self.input)
        check_budget(self)
        check_train_on(self.train_on, self.input)

    def label(self) -> str:
        """``finetune``, with a non-default input and the training settings (``finetune(conceal-codeblock)[lw4o0]``).

        A non-default head or number of trainable stages is appended
        (``-cosface``, ``-b14``) so that such variants may sit side by side.
        """
        out = learned_label(self)
        if self.head != "arcface":
            out += f"-{self.head}"
        if self.train_blocks is not None:
            out += f"-b{self.train_blocks}"
        return out

    # ----------------------------------------------------------------- contract

    def input_attack(self) -> Attack:
        return input_attack_named(self.input)

    def train_schemes(self) -> list[tuple[str, dict[str, Any]]] | None:
        return listed_settings(self.train_on)

    def trained_stages(self) -> int:
        """How many final stages train: ``train_blocks``, else 2 on the CPU and all on a GPU."""
        if self.train_blocks is not None:
            return self.train_blocks
        return _N_STAGES if self.resolved_device() == "cuda" else _CPU_BLOCKS

    @property
    def _stop(self) -> int:
        """Stages before this index are frozen (their outputs are computed once)."""
        return _N_STAGES - self.trained_stages()

    def _trunk(self, net: Any, images: np.ndarray, device: str) -> np.ndarray:
        """The frozen trunk's outputs, float16 (N, C, H, W)."""
        import torch

        images = check_faces(images)
        stop = self._stop
        if stop == 0:  # the whole network trains: the "trunk" is the normalised input (exact in float16)
            return ((images.transpose(0, 3, 1, 2).astype(np.float32) - 127.5) * 0.0078125).astype(np.float16)
        session = _trunk_session(stop, torch.get_num_threads()) if device == "cpu" else None
        parts = []
        with torch.no_grad(), progress(len(images), f"{self.registry_name}: frozen trunk", unit="face") as bar:
            for start in range(0, len(images), _TRUNK_BATCH):
                x = np.ascontiguousarray(images[start : start + _TRUNK_BATCH].transpose(0, 3, 1, 2), np.float32)
                if session is not None:
                    h = session.run(None, {session.get_inputs()[0].name: x})[0]
                else:
                    h = net.trunk(torch.from_numpy(x).to(device), stop).cpu().numpy()
                parts.append(h.astype(np.float16))
                bar.update(len(x))
        return np.concatenate(parts)

    def _rest(self, net: Any, trunk: np.ndarray, device: str) -> np.ndarray:
        """Unit-norm embeddings of trunk outputs through the trainable part, without gradients."""
        import torch

        out = np.zeros((len(trunk), SFACE_DIM), np.float32)
        with torch.no_grad():
            for start in range(0, len(trunk), _TRUNK_BATCH):
                h = torch.from_numpy(trunk[start : start + _TRUNK_BATCH].astype(np.float32)).to(device)
                out[start : start + len(h)] = net.rest(h, self._stop).cpu().numpy()
        return l2_normalise(out)

    def _trainable(self, net: Any) -> list[torch.nn.Module]:
        return [*net.stages[self._stop :], net.bn, net.fc, net.bn_fc]

    def fit(
        self,
        inputs: np.ndarray,
        labels: np.ndarray,
        *,
        val_inputs: np.ndarray | None = None,
        val_labels: np.ndarray | None = None,
        val_references: np.ndarray | None = None,
        desc: str = "",
    ) -> Self:
        """Fine-tune on (input-attack output, subject label) pairs; keep the epoch with the best validation EER.

        The validation EER compares each protected face of ``val_inputs``
        with the plain faces ``val_references`` of the other validation faces
        (:func:`probe_reference_eer`). Training stops on a plateau of it or a
        budget (:class:`attacks.learned.Stopping`; without validation, on a
        budget only); the last epoch of ``history_`` says why (``stop``).
        """
        import torch

        labels = np.asarray(labels)
        if len(inputs) != len(labels) or len(inputs) < 2:
            raise ValueError(f"need as many labels as inputs, at least two: got {len(inputs)} and {len(labels)}")
        if val_inputs is not None and (val_references is None or len(val_references) != len(val_inputs)):
            got = "none" if val_references is None else len(val_references)
            raise ValueError(f"val_references: need one plain face per validation input ({len(val_inputs)}), got {got}")
        classes, y_all = np.unique(labels, return_inverse=True)
        if len(classes) < 2:
            raise ValueError("need at least two subjects to learn identities")
        device = self.resolved_device()
        started = time.perf_counter()  # the minutes budget counts from here: the frozen trunk's pass is part of it
        torch.manual_seed(self.seed)
        rng = np.random.default_rng(self.seed)
        net: Any = load_sface_torch().to(device)  # an SFaceNet (trunk/rest/stages)
        name = desc or self.registry_name
        trunk = self._trunk(net, inputs, device)
        val: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        if val_inputs is not None and val_labels is not None and val_references is not None and len(val_inputs) > 2:
            keep = np.sort(rng.permutation(len(val_inputs))[:_MAX_VAL_FACES])
            val = (
                self._trunk(net, np.asarray(val_inputs)[keep], device),
                self._trunk(net, np.asarray(val_references)[keep], device),
                np.asarray(val_labels)[keep],
            )

        # Class centres start at the pretrained model's mean embedding of each
        # subject: the head begins where the backbone already is, so the first
        # steps refine features instead of undoing them.
        emb = self._rest(net, trunk, device)
        sums = np.zeros((len(classes), SFACE_DIM), np.float32)
        np.add.at(sums, y_all, emb)
        centres = torch.nn.Parameter(torch.from_numpy(l2_normalise(sums)).to(device))

        for p in net.parameters():
            p.requires_grad_(False)
        trainable = [p for m in self._trainable(net) for p in m.parameters()]
        for p in trainable:
            p.requires_grad_(True)
        groups: list[dict[str, Any]] = [
            {"params": trainable},
            {"params": [centres], "lr": 10 * self.learning_rate},
        ]
        optimiser = torch.optim.Adam(groups, lr=self.learning_rate)

        def val_eer() -> float | None:
            # Both sides through the model being trained: the attacker evaluates with it on both.
            if val is None:
                return None
            return probe_reference_eer(self._rest(net, val[0], device), self._rest(net, val[1], device), val[2])

        def snapshot() -> dict[str, torch.Tensor]:
            return {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}

        first = val_eer()
        history: list[dict[str, Any]] = [{"epoch": 0, "loss": None, "val_eer": first, "seconds": 0.0}]
        log.info("%s: pretrained val_eer %s", name, f"{first:.4f}" if first is not None else "n/a")
        best = (first if first is not None else math.inf, 0, snapshot())
        stopping = Stopping(self, optimiser, start=first, started=started)
        budget = stopping.max_epochs
        n, batch = len(trunk), min(self.batch_size, len(trunk))
        y_t = torch.from_numpy(y_all.astype(np.int64))
        # BatchNorm statistics stay the pretrained ones: eval mode throughout
        # (small batches of few subjects would make poor statistics).
        net.eval()
        for epoch in range(1, budget + 1):
            t0 = time.perf_counter()
            order = rng.permutation(n)
            total, steps = 0.0, 0
            lr = stopping.lr()
            with progress(n, f"{name} epoch {epoch}/{budget}", unit="face") as bar:
                for start in range(0, n, batch):
                    idx = order[start : start + batch]
                    h = torch.from_numpy(trunk[idx].astype(np.float32)).to(device)
                    feats = torch.nn.functional.normalize(net.rest(h, self._stop), dim=1)
                    cos = feats @ torch.nn.functional.normalize(centres, dim=1).T
                    target = y_t[idx].to(device)
                    loss = torch.nn.functional.cross_entropy(
                        margin_logits(cos, target, self.head, self.scale, self.margin), target
                    )
                    optimiser.zero_grad(set_to_none=True)
                    loss.backward()
                    optimiser.step()
                    total += float(loss.detach())
                    steps += 1
                    bar.update(len(idx))
            score = val_eer()
            seconds = time.perf_counter() - t0
            history.append({"epoch": epoch, "loss": total / steps, "val_eer": score, "seconds": seconds, "lr": lr})
            log.info(
                "%s: epoch %d/%d loss %.4f val_eer %s lr %.2g (%.0f s)",
                name,
                epoch,
                budget,
                total / steps,
                f"{score:.4f}" if score is not None else "n/a",
                lr,
                seconds,
            )
            # Without validation the last epoch is kept.
            if score is None or score < best[0]:
                best = (score if score is not None else -epoch, epoch, snapshot())
            if stopping.step(epoch, score):
                history[-1]["stop"] = stopping.reason
                log.info("%s: stopped after epoch %d (%s); kept epoch %d", name, epoch, stopping.reason, best[1])
                break
        net.load_state_dict(best[2])
        for entry in history:
            entry["kept"] = entry["epoch"] == best[1]
        self.net_ = net.cpu().eval()
        self.history_ = history
        return self

    def state_arrays(self) -> dict[str, np.ndarray]:
        """The trainable part's weights (the frozen trunk is the pretrained file's)."""
        out = {}
        for i, module in enumerate(self._trainable(self.net_)):
            for k, v in module.state_dict().items():
                out[f"{i}.{k}"] = v.detach().cpu().numpy()
        return out

    def load_state(self, arrays: dict[str, np.ndarray], history: list[dict[str, Any]]) -> Self:
        import torch

        net: Any = load_sface_torch()
        for i, module in enumerate(self._trainable(net)):
            prefix = f"{i}."
            state = {k[len(prefix) :]: torch.from_numpy(np.array(v)) for k, v in arrays.items() if k.startswith(prefix)}
            module.load_state_dict(state)
        self.net_ = net.eval()
        self.history_ = list(history)
        return self

    def embed(self, images: np.ndarray) -> np.ndarray:
        """Unit-norm float32 (N, 128) embeddings by the fine-tuned network (on the CPU)."""
        if not hasattr(self, "net_"):
            raise RuntimeError("finetune is not fitted: the harness trains it on the attacker's faces first")
        images = check_faces(images)
        if not len(images):
            return np.zeros((0, SFACE_DIM), np.float32)
        return self._rest(self.net_, self._trunk(self.net_, images, "cpu"), "cpu")

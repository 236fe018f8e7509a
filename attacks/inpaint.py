"""``inpaint``: learned reconstruction of protected faces (IH&MMSec 2023).

An attacker who knows the scheme protects its *own* faces under its *own*
keys and trains an encoder-decoder network on pairs (what a keyless attack
makes of a protected face, the original face). The trained network then turns
the victims' protected samples into faces. The network is a UNet (encoder and
decoder with skip connections between mirrored levels) trained with MSE, as in
the paper; depth and width are parameters.

Beyond the paper, ``loss: mse+identity`` adds an identity term: one minus the
cosine between the SFace embeddings of the reconstruction and of the original
(:func:`identity_loss`). SFace is public, so a realistic attacker owns it; it
stays frozen (eval mode, no parameter gradients) and only the UNet learns
through it. A gain it brings must be checked with a recognizer it did not
train against (``lbp``, ``fv-sift``), or it may only be fooling SFace.

Why by hand: a UNet is ~60 lines of torch, while segmentation libraries pull
in torchvision and download pretrained weights from a hub at run time, which
this project never does.

torch is imported inside functions: discovering the registered attacks must
not cost a torch import (about a second) on runs that never train.
"""

from __future__ import annotations

import logging
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
    ParamError,
    ReconstructionAttack,
)
from benchmark.core.parallel import progress
from benchmark.core.registry import ATTACKS
from benchmark.recognizers.sface_torch import SFaceTorchRecognizer, load_sface_torch

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["InpaintAttack", "build_unet", "identity_loss", "to_planes", "from_planes"]

log = logging.getLogger("facesec.progress")

# ITU-R BT.601 luma: the grey input of a ``channels: grey`` network.
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
_INFER_BATCH = 256
_SFACE_SIZE = 112  # SFace's aligned input; its fully connected layer fixes the size
_IDENTITY_KNOWLEDGE = "a public pretrained recognizer (SFace) for an identity loss"


def build_unet(depth: int, width: int, channels: int) -> torch.nn.Module:
    """A UNet: ``depth`` levels of (conv3x3-BN-ReLU)x2 and 2x2 max pooling, mirrored with skips.

    Level ``i`` has ``width * 2**i`` feature maps; the output is a sigmoid in
    [0, 1] per channel. Inputs of any size work: they are reflect-padded to a
    multiple of ``2**depth`` and the output is cropped back.
    """
    import torch
    from torch import nn

    def block(c_in: int, c_out: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True),
        )

    class UNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            widths = [width * 2**i for i in range(depth + 1)]
            self.down = nn.ModuleList([block(channels if i == 0 else widths[i - 1], widths[i]) for i in range(depth)])
            self.bottom = block(widths[depth - 1], widths[depth])
            self.up = nn.ModuleList(
                [nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in reversed(range(depth))]
            )
            self.merge = nn.ModuleList([block(2 * widths[i], widths[i]) for i in reversed(range(depth))])
            self.head = nn.Conv2d(widths[0], channels, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h, w = x.shape[-2:]
            step = 2**depth
            pad_h, pad_w = (-h) % step, (-w) % step
            if pad_h or pad_w:
                x = nn.functional.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
            skips = []
            for level in self.down:
                x = level(x)
                skips.append(x)
                x = nn.functional.max_pool2d(x, 2)
            x = self.bottom(x)
            for up, merge, skip in zip(self.up, self.merge, reversed(skips)):
                x = merge(torch.cat([up(x), skip], dim=1))
            return torch.sigmoid(self.head(x))[..., :h, :w]

    return UNet()


def identity_loss(
    sface: torch.nn.Module, output: torch.Tensor, target: torch.Tensor | None, want: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean of ``1 - cosine`` between the SFace embeddings of ``output`` and ``target`` planes.

    Args:
        sface: Frozen SFace module (:func:`benchmark.recognizers.sface_torch.load_sface_torch`).
        output: Reconstructions, (N, C, 112, 112) planes in [0, 1]; gradients flow to them.
        target: Originals as the same planes; embedded without gradients (unused when ``want`` is given).
        want: The originals' embeddings (:func:`sface_embed`), computed once per training set
            instead of once per batch; None embeds ``target``.

    Returns:
        A scalar in [0, 2]: 0 when the two embeddings point the same way.

    Raises:
        ValueError: faces that are not 112x112.
    """
    import torch

    if tuple(output.shape[-2:]) != (_SFACE_SIZE, _SFACE_SIZE):
        raise ValueError(
            f"the identity loss needs {_SFACE_SIZE}x{_SFACE_SIZE} aligned faces, got {tuple(output.shape[-2:])}"
        )

    if want is None:
        if target is None:
            raise ValueError("identity_loss needs the target planes or their embeddings")
        want = sface_embed(sface, target)
    return (1.0 - torch.nn.functional.cosine_similarity(_embed(sface, output), want, dim=1)).mean()


def _embed(sface: torch.nn.Module, planes: torch.Tensor) -> torch.Tensor:
    # SFace takes raw 0-255 RGB (it normalises with (x - 127.5) / 128 itself);
    # a grey plane is what from_planes shows: the luma replicated to RGB.
    return sface(planes.expand(-1, 3, -1, -1) * 255.0)


def sface_embed(sface: torch.nn.Module, planes: torch.Tensor) -> torch.Tensor:
    """SFace embeddings of (N, C, 112, 112) planes in [0, 1], without gradients, in batches."""
    import torch

    with torch.no_grad():
        parts = [_embed(sface, planes[i : i + _INFER_BATCH]) for i in range(0, len(planes), _INFER_BATCH)]
    return torch.cat(parts) if parts else torch.zeros((0, 128))


def to_planes(images: np.ndarray, grey: bool) -> np.ndarray:
    """uint8 (N, H, W, 3) faces as float32 (N, C, H, W) in [0, 1]; C = 1 (luma) when ``grey``."""
    x = np.asarray(images, np.float32) / 255.0
    if grey:
        return (x @ _LUMA)[:, None]
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def from_planes(planes: np.ndarray) -> np.ndarray:
    """float (N, C, H, W) in [0, 1] as uint8 (N, H, W, 3) faces (a grey plane replicated)."""
    x = np.clip(np.rint(np.asarray(planes) * 255.0), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)
    return np.repeat(x, 3, axis=3) if x.shape[3] == 1 else np.ascontiguousarray(x)


class _Objective:
    """A batch's training loss: MSE, plus ``weight`` x :func:`identity_loss` when there is an SFace.

    The originals' embeddings are computed once per set (:meth:`embed_targets`),
    not once per batch: they never change. The identity term is taken on the
    first ``faces`` pairs of each shuffled batch (all when None): an unbiased
    estimate of the term over the batch at a fraction of its cost, since
    SFace's forward and backward pass costs about five UNet training steps per face.
    """

    def __init__(self, sface: torch.nn.Module | None, weight: float, faces: int | None) -> None:
        self.sface = sface
        self.weight = weight
        self.faces = faces

    def embed_targets(self, originals: np.ndarray, grey: bool, device: torch.device) -> torch.Tensor | None:
        """SFace embeddings of uint8 (N, H, W, 3) originals, or None without an identity term."""
        import torch

        if self.sface is None:
            return None
        parts = [
            sface_embed(self.sface, torch.from_numpy(to_planes(originals[i : i + _INFER_BATCH], grey)).to(device))
            for i in range(0, len(originals), _INFER_BATCH)
        ]
        return torch.cat(parts) if parts else None

    def __call__(self, output: torch.Tensor, target: torch.Tensor, want: torch.Tensor | None) -> torch.Tensor:
        import torch

        mse = torch.nn.functional.mse_loss(output, target)
        if self.sface is None:
            return mse
        k = len(output) if self.faces is None else min(self.faces, len(output))
        return mse + self.weight * identity_loss(self.sface, output[:k], target[:k], None if want is None else want[:k])


@ATTACKS.register("inpaint")
class InpaintAttack(ReconstructionAttack):
    """Learned reconstruction: a UNet trained on the attacker's own (protected, original) face pairs.

    Args:
        input: Registered attack (keyless, or ``invert`` with the victim's key) whose output the network takes
            (``naive`` decode, or e.g. ``conceal-codeblock``), with its default parameters.
            A non-default input is part of the label: ``inpaint(conceal-codeblock)``.
        train_on: Scheme settings the attacker trains under, a list of
            ``{name: ..., params: {...}}``; none (the default) trains one model
            per setting attacked, a list trains one model that serves them all.
        depth: UNet levels (2x2 poolings).
        width: Feature maps of the first level (doubling per level).
        channels: ``grey`` (one luma plane in and out, replicated to RGB) or ``rgb``.
        loss: ``mse`` (the paper's) or ``mse+identity``: MSE plus ``identity_weight``
            times :func:`identity_loss` by a frozen SFace (112x112 faces only).
        identity_weight: Weight of the identity term (ignored with ``mse``).
        identity_batch: Pairs of each batch the identity term is taken on (a random
            subset, since batches are shuffled; None: the whole batch). SFace's
            forward and backward pass costs about five UNet training steps per
            face on a CPU, so the whole batch makes an epoch about 1.5x slower
            than 8 of 32. Validation takes the term on every held-out pair.
        max_epochs: Budget in passes over the training pairs.
        max_minutes: Budget in wall-clock minutes (None: none); checked after each
            epoch, so the last epoch may overrun it. A model it stops is not
            reproducible bit for bit (it depends on the machine).
        patience: Epochs without improvement of the validation loss before
            stopping (a plateau: ``converged``).
        min_delta: Least improvement that counts (a fraction of the best
            validation loss when ``min_delta_mode`` is ``relative``, else an amount).
        min_delta_mode: ``relative`` or ``absolute``.
        lr_patience: Flat epochs after which the learning rate is halved (again
            every as many; None: a constant rate).
        epochs: Deprecated alias of ``max_epochs``.
        batch_size: Pairs per optimiser step.
        learning_rate: Adam step size at the start (halved on flat epochs, see ``lr_patience``).
        seed: Seeds weight initialisation and batch order.
        device: ``auto`` (a GPU when present), ``cpu`` or ``cuda``; CPU results are the reference.
    """

    knowledge = (
        "protected samples and scheme parameters (Kerckhoffs); no victim key; "
        "trains a reconstruction network on its own faces protected under its own keys"
    )
    min_train_faces = 16
    _constraints = {
        **LEARNING_CONSTRAINTS,
        "depth": Interval(int, 1, 6),
        "width": Interval(int, 2, 256),
        "channels": Options(("grey", "rgb")),
        "train_on": Nullable(InstanceOf((list,))),
        "batch_size": Interval(int, 1, 65_536),
        "loss": Options(("mse", "mse+identity")),
        "identity_weight": Interval(float, 0, 100, closed="right"),
        "identity_batch": Nullable(Interval(int, 1, 65_536)),
    }

    def __init__(
        self,
        *,
        input: str = "naive",  # noqa: A002 - the protocol's name for it
        train_on: list[dict[str, Any]] | None = None,
        depth: int = 4,
        width: int = 8,
        channels: str = "grey",
        loss: str = "mse",
        identity_weight: float = 0.05,
        identity_batch: int | None = 8,
        max_epochs: int = DEFAULT_MAX_EPOCHS,
        max_minutes: float | None = DEFAULT_MAX_MINUTES,
        patience: int = DEFAULT_PATIENCE,
        min_delta: float = DEFAULT_MIN_DELTA,
        min_delta_mode: str = DEFAULT_MIN_DELTA_MODE,
        lr_patience: int | None = DEFAULT_LR_PATIENCE,
        epochs: int | None = None,
        batch_size: int = 32,
        learning_rate: float = 1e-3,
        seed: int = 0,
        device: str = "auto",
    ) -> None:
        self.input = input
        self.train_on = train_on
        self.depth = depth
        self.width = width
        self.channels = channels
        self.loss = loss
        self.identity_weight = identity_weight
        self.identity_batch = identity_batch
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
        if self.loss == "mse+identity":
            missing = SFaceTorchRecognizer().available()
            if missing is not None:
                raise ParamError("loss", self.loss, f"needs SFace in torch: {missing}")
        check_budget(self)
        check_train_on(self.train_on, self.input)

    def label(self) -> str:
        """``inpaint``, with a non-default input and the training settings (``inpaint(conceal-codeblock)[lw4o6]``)."""
        return learned_label(self)

    # ----------------------------------------------------------------- contract

    def input_attack(self) -> Attack:
        return input_attack_named(self.input)

    def describe_knowledge(self) -> str:
        if self.loss == "mse+identity":
            return f"{self.knowledge}, and {_IDENTITY_KNOWLEDGE}"
        return self.knowledge

    def train_schemes(self) -> list[tuple[str, dict[str, Any]]] | None:
        return listed_settings(self.train_on)

    def _net(self) -> torch.nn.Module:
        return build_unet(self.depth, self.width, 1 if self.channels == "grey" else 3)

    def objective(self, device: torch.device) -> _Objective:
        """The training loss as ``loss`` says (:class:`_Objective`).

        With ``mse+identity`` it loads SFace once, frozen: eval mode (its
        BatchNorm statistics stay those of the file) and no parameter
        gradients, so only the UNet learns through it.
        """
        if self.loss == "mse":
            return _Objective(None, 0.0, None)
        sface = load_sface_torch().to(device).eval().requires_grad_(False)
        return _Objective(sface, float(self.identity_weight), self.identity_batch)

    def fit(
        self,
        inputs: np.ndarray,
        originals: np.ndarray,
        *,
        val_inputs: np.ndarray | None = None,
        val_originals: np.ndarray | None = None,
        desc: str = "",
    ) -> Self:
        """Train the UNet on (input, original) pairs with MSE and Adam, until a plateau or a budget.

        With validation pairs, training stops on a plateau of the validation
        loss or a budget (:class:`attacks.learned.Stopping`) and the weights of
        the epoch with the lowest validation loss are kept; without, it stops
        on a budget and those of the last epoch are kept. The last epoch of
        ``history_`` says why it stopped (``stop``).
        """
        import torch

        if len(inputs) != len(originals) or len(inputs) == 0:
            raise ValueError(f"need as many inputs as originals, at least one: got {len(inputs)} and {len(originals)}")
        device = torch.device(self.resolved_device())
        torch.manual_seed(self.seed)
        net = self._net().to(device)
        optimiser = torch.optim.Adam(net.parameters(), lr=self.learning_rate)
        objective = self.objective(device)
        rng = np.random.default_rng(self.seed)
        grey = self.channels == "grey"
        want = objective.embed_targets(originals, grey, device)
        val_want = objective.embed_targets(val_originals, grey, device) if val_originals is not None else None
        n, batch = len(inputs), min(self.batch_size, len(inputs))
        history: list[dict[str, Any]] = []
        best: tuple[float, int, dict[str, torch.Tensor]] | None = None
        stopping = Stopping(self, optimiser)
        budget = stopping.max_epochs
        name = desc or self.registry_name
        for epoch in range(1, budget + 1):
            t0 = time.perf_counter()
            net.train()
            order = rng.permutation(n)
            total = 0.0
            lr = stopping.lr()
            with progress(n, f"{name} epoch {epoch}/{budget}", unit="pair") as bar:
                for start in range(0, n - batch + 1, batch):  # full batches only: BatchNorm needs > 1 sample
                    idx = order[start : start + batch]
                    x = torch.from_numpy(to_planes(inputs[idx], grey)).to(device)
                    y = torch.from_numpy(to_planes(originals[idx], grey)).to(device)
                    optimiser.zero_grad(set_to_none=True)
                    loss = objective(net(x), y, None if want is None else want[idx])
                    loss.backward()
                    optimiser.step()
                    total += float(loss.detach()) * len(idx)
                    bar.update(len(idx))
                    bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
            n_used = (n // batch) * batch
            val = self._loss(net, val_inputs, val_originals, objective, val_want) if val_inputs is not None else None
            seconds = time.perf_counter() - t0
            history.append({"epoch": epoch, "loss": total / n_used, "val_loss": val, "seconds": seconds, "lr": lr})
            val_text = f"{val:.5f}" if val is not None else "n/a"
            log.info(
                "%s: epoch %d/%d loss %.5f val_loss %s lr %.2g (%.0f s)",
                name,
                epoch,
                budget,
                total / n_used,
                val_text,
                lr,
                seconds,
            )
            score = val if val is not None else -epoch  # without validation: keep the last epoch
            if best is None or score < best[0]:
                best = (score, epoch, {k: v.detach().cpu().clone() for k, v in net.state_dict().items()})
            if stopping.step(epoch, val):
                history[-1]["stop"] = stopping.reason
                log.info("%s: stopped after epoch %d (%s); kept epoch %d", name, epoch, stopping.reason, best[1])
                break
        assert best is not None
        net.load_state_dict(best[2])
        for entry in history:
            entry["kept"] = entry["epoch"] == best[1]
        self.net_ = net.cpu().eval()
        self.history_ = history
        return self

    def _loss(
        self,
        net: torch.nn.Module,
        inputs: np.ndarray,
        originals: np.ndarray | None,
        objective: _Objective,
        want: torch.Tensor | None,
    ) -> float:
        """The training objective on held-out pairs (the identity term on every face, not a subset)."""
        import torch

        assert originals is not None and len(originals) == len(inputs)
        out = self._forward(net, inputs)
        mse = float(np.mean((out - to_planes(originals, self.channels == "grey")) ** 2))
        if want is None or objective.sface is None:
            return mse
        device = next(net.parameters()).device
        term = 0.0
        with torch.no_grad():
            for start in range(0, len(out), _INFER_BATCH):
                part = torch.from_numpy(out[start : start + _INFER_BATCH]).to(device)
                term += float(identity_loss(objective.sface, part, None, want[start : start + len(part)])) * len(part)
        return mse + objective.weight * term / max(len(out), 1)

    def _forward(self, net: torch.nn.Module, inputs: np.ndarray) -> np.ndarray:
        import torch

        device = next(net.parameters()).device
        grey = self.channels == "grey"
        was_training = net.training
        net.eval()
        parts = []
        with torch.no_grad():
            for start in range(0, len(inputs), _INFER_BATCH):
                x = torch.from_numpy(to_planes(inputs[start : start + _INFER_BATCH], grey)).to(device)
                parts.append(net(x).cpu().numpy())
        net.train(was_training)
        c = 1 if grey else 3
        return np.concatenate(parts) if parts else np.zeros((0, c, *np.shape(inputs)[1:3]), np.float32)

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy() for k, v in self.net_.state_dict().items()}

    def load_state(self, arrays: dict[str, np.ndarray], history: list[dict[str, Any]]) -> Self:
        import torch

        net = self._net()
        net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in arrays.items()})
        self.net_ = net.eval()
        self.history_ = list(history)
        return self

    def reconstruct(self, inputs: np.ndarray) -> np.ndarray:
        """Run the fitted network on input-attack outputs (uint8 (N, H, W, 3))."""
        if not hasattr(self, "net_"):
            raise RuntimeError("inpaint is not fitted: the harness trains it on the attacker's faces first")
        return from_planes(self._forward(self.net_, np.asarray(inputs)))

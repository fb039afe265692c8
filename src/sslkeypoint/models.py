"""Heatmap keypoint models built on any encoder."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from sslkeypoint.encoders import create_encoder
from sslkeypoint.encoders.base import validate_encoder
from sslkeypoint.encoders.unet import ConvBlock

__all__ = ["HEAD_PRIOR", "DecoderStage", "HeatmapEnsemble", "HeatmapUNet", "build_heatmap_model", "run_decoder"]

#: The heatmap value every pixel starts at: the head's bias is initialised to ``logit(HEAD_PRIOR)``.
HEAD_PRIOR = 0.01


class DecoderStage(nn.Module):
    """One U-Net decoder step: transposed-convolution upsampling, skip concatenation, conv block.

    ``up`` is a ``ConvTranspose2d`` with kernel and stride ``factor`` (2×2 stride 2 in the U-Net);
    the skip feature (if any) is concatenated in front of the upsampled map and ``block`` applies
    two 3×3 conv + BatchNorm + ReLU.

    Args:
        in_channels: Channels of the coarser input.
        skip_channels: Channels of the skip feature (0 for none).
        out_channels: Channels after upsampling and of the block's output.
        factor: Upsampling factor.
        skip_index: Index of the encoder feature used as skip, or ``None``.

    Examples:
        >>> import torch
        >>> stage = DecoderStage(32, 16, 16, skip_index=0)
        >>> stage(torch.zeros(1, 32, 4, 4), torch.zeros(1, 16, 8, 8)).shape
        torch.Size([1, 16, 8, 8])
    """

    def __init__(
        self,
        in_channels: int,
        skip_channels: int,
        out_channels: int,
        factor: int = 2,
        skip_index: int | None = None,
    ) -> None:
        super().__init__()
        self.factor = int(factor)
        self.skip_index = skip_index
        self.up = nn.ConvTranspose2d(in_channels, out_channels, self.factor, stride=self.factor)
        self.block = ConvBlock(out_channels + skip_channels, out_channels)

    def forward(self, x: Tensor, skip: Tensor | None = None) -> Tensor:
        """``(B, in, h, w)`` (+ skip ``(B, skip, h*f, w*f)``) ``-> (B, out, h*f, w*f)``."""
        x = self.up(x)
        if skip is not None:
            if skip.shape[-2:] != x.shape[-2:]:
                raise ValueError(
                    f"decoder upsampled to {tuple(x.shape[-2:])} but the skip feature "
                    f"{self.skip_index} is {tuple(skip.shape[-2:])}"
                )
            x = torch.cat([skip, x], dim=1)
        return self.block(x)


def run_decoder(decoder: nn.ModuleList | Sequence[nn.Module], features: Sequence[Tensor]) -> Tensor:
    """The output map of a U-Net decoder (:attr:`HeatmapUNet.decoder`) on an encoder's features.

    Starts from the deepest feature; every :class:`DecoderStage` takes the feature of its
    ``skip_index`` (or none) as its skip.

    Args:
        decoder: The stages, coarse to fine.
        features: The encoder's feature maps, finest first.

    Returns:
        The last stage's output ``(B, C, h, w)``.

    Examples:
        >>> import torch
        >>> from sslkeypoint.encoders import UNetEncoder
        >>> model = HeatmapUNet(UNetEncoder(in_chans=1, widths=(4, 8), bottleneck_width=16), 2, heatmap_stride=2)
        >>> run_decoder(model.decoder, model.encoder(torch.rand(1, 1, 16, 16))).shape
        torch.Size([1, 8, 8, 8])
    """
    y = features[-1]
    for stage in decoder:
        index: int | None = stage.skip_index  # type: ignore[assignment]
        y = stage(y, features[index] if index is not None else None)
    return y


class HeatmapUNet(nn.Module):
    """Any encoder + U-Net decoder with skips + 1×1 head + sigmoid: one heatmap per keypoint.

    The decoder starts from the deepest feature and, as in the U-Net, doubles the resolution with a
    2×2 stride-2 ``ConvTranspose2d``, concatenates the encoder feature of that resolution and applies
    two 3×3 conv/BN/ReLU. It stops at the heatmap's resolution, ``heatmap_stride`` (256×256 in →
    64×64 out with stride 4), so encoder features finer than the heatmap are not decoded. Channels
    and reductions come from the encoder: when its finest feature is coarser than the heatmap, extra
    stages upsample without a skip; features that share a reduction use the deepest of them.

    Input sizes must be multiples of the encoder's deepest reduction (16 for the default U-Net);
    other sizes raise a ValueError (resize or pad the images first).

    The head's bias starts at ``logit(HEAD_PRIOR)`` (heatmaps near 0.01 everywhere, as the targets
    are almost everywhere): started at 0.5, the first steps of a heatmap MSE push every logit down
    hard, and with Adam a channel can be driven deep into the sigmoid's flat tail, where the MSE
    gradient vanishes — its landmark then stays at one image-independent place (a collapsed
    landmark, see :class:`~sslkeypoint.lightning.CollapseWarning`).

    Args:
        encoder: An encoder (see :mod:`sslkeypoint.encoders`).
        num_keypoints: Number of heatmaps ``K``.
        heatmap_stride: Input pixels per heatmap pixel; must be reachable from the deepest reduction
            by integer upsampling steps and not coarser than it.
        decoder_channels: Output channels of each decoder stage, coarse to fine. By default each
            stage has the channels of its skip feature (the U-Net halving); a stage without a skip
            halves the previous width (at least 16).

    Attributes:
        encoder: The encoder.
        decoder: ``nn.ModuleList`` of :class:`DecoderStage`, coarse to fine.
        head: The 1×1 convolution to ``K`` channels.
        num_keypoints: ``K``.
        heatmap_stride: The stride ``s``.
        in_chans: Input channels (the encoder's).
        embed_dim: Size ``D`` of :meth:`embed`'s output (the deepest feature's channels).

    Examples:
        >>> import torch
        >>> from sslkeypoint.encoders import UNetEncoder
        >>> enc = UNetEncoder(in_chans=1, widths=(8, 16, 32, 64), bottleneck_width=128)
        >>> model = HeatmapUNet(enc, num_keypoints=3)
        >>> model(torch.rand(2, 1, 256, 256)).shape
        torch.Size([2, 3, 64, 64])
        >>> model.embed(torch.rand(2, 1, 256, 256)).shape
        torch.Size([2, 128])
    """

    def __init__(
        self,
        encoder: nn.Module,
        num_keypoints: int,
        heatmap_stride: int = 4,
        decoder_channels: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        validate_encoder(encoder)
        if num_keypoints < 1:
            raise ValueError(f"num_keypoints must be >= 1; got {num_keypoints}")
        if heatmap_stride < 1:
            raise ValueError(f"heatmap_stride must be >= 1; got {heatmap_stride}")
        enc: Any = encoder
        channels = [int(c) for c in enc.channels]
        reductions = [int(r) for r in enc.reductions]
        deepest = reductions[-1]
        if heatmap_stride > deepest:
            raise ValueError(
                f"heatmap_stride {heatmap_stride} is coarser than the encoder's deepest feature "
                f"(reduction {deepest}); use heatmap_stride <= {deepest}"
            )

        # Plan the stages: (factor, skip index or None), coarse to fine.
        plan: list[tuple[int, int | None]] = []
        current = deepest
        for r in sorted({r for r in reductions if heatmap_stride <= r < deepest}, reverse=True):
            if current % r:
                raise ValueError(
                    f"encoder reductions {reductions} are not integer multiples of each other "
                    f"({current} to {r})"
                )
            plan.append((current // r, max(i for i, q in enumerate(reductions) if q == r)))
            current = r
        while current > heatmap_stride:
            if current % heatmap_stride:
                raise ValueError(
                    f"heatmap_stride {heatmap_stride} cannot be reached from reduction {current} "
                    f"by integer upsampling (encoder reductions {reductions})"
                )
            ratio = current // heatmap_stride
            factor = 2 if ratio % 2 == 0 else ratio
            plan.append((factor, None))
            current //= factor

        if decoder_channels is None:
            outs: list[int] = []
            prev = channels[-1]
            for _, skip in plan:
                prev = channels[skip] if skip is not None else max(16, prev // 2)
                outs.append(prev)
        else:
            outs = [int(c) for c in decoder_channels]
            if len(outs) != len(plan) or min(outs, default=1) < 1:
                raise ValueError(
                    f"decoder_channels must give {len(plan)} positive widths (one per decoder stage "
                    f"from reduction {deepest} to {heatmap_stride}); got {tuple(outs)}"
                )

        self.encoder = encoder
        self.num_keypoints = int(num_keypoints)
        self.heatmap_stride = int(heatmap_stride)
        self.in_chans = int(enc.in_chans)
        self.embed_dim = channels[-1]
        self.decoder_channels = outs
        self._divisor = deepest
        stages = []
        prev = channels[-1]
        for (factor, skip), out in zip(plan, outs):
            skip_ch = channels[skip] if skip is not None else 0
            stages.append(DecoderStage(prev, skip_ch, out, factor=factor, skip_index=skip))
            prev = out
        self.decoder = nn.ModuleList(stages)
        self.head = nn.Conv2d(prev, self.num_keypoints, 1)
        assert self.head.bias is not None
        nn.init.constant_(self.head.bias, math.log(HEAD_PRIOR / (1.0 - HEAD_PRIOR)))

    def _check_input(self, x: Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.in_chans:
            raise ValueError(
                f"{type(self).__name__} expects images of shape (B, {self.in_chans}, H, W); "
                f"got {tuple(x.shape)}"
            )
        h, w = x.shape[-2:]
        if h % self._divisor or w % self._divisor:
            raise ValueError(
                f"input size (H, W) = ({h}, {w}) is not a multiple of {self._divisor}, the encoder's "
                "deepest reduction; resize or pad the images to a multiple of it"
            )

    def forward(self, x: Tensor) -> Tensor:
        """Predict heatmaps.

        Args:
            x: ``(B, in_chans, H, W)`` images, ``H`` and ``W`` multiples of the deepest reduction.

        Returns:
            ``(B, K, H / heatmap_stride, W / heatmap_stride)`` heatmaps in ``[0, 1]``.
        """
        self._check_input(x)
        return torch.sigmoid(self.head(run_decoder(self.decoder, self.encoder(x))))

    def embed(self, x: Tensor) -> Tensor:
        """Global-average-pooled deepest encoder feature, the input of self-supervised heads.

        Args:
            x: ``(B, in_chans, H, W)`` images.

        Returns:
            ``(B, embed_dim)`` embeddings.
        """
        self._check_input(x)
        return self.encoder(x)[-1].mean(dim=(2, 3))


class HeatmapEnsemble(nn.Module):
    """The mean of the heatmaps of several networks: one heatmap network made of ``N`` members.

    Every member maps the same ``(B, C, H, W)`` images to ``(B, K, h, w)`` heatmaps (same input
    channels, landmarks and heatmap size, trained with the same codec); the ensemble returns their
    element-wise mean, which the codec then decodes once. Averaging heatmaps before decoding keeps
    the sub-pixel decoding of one sharp peak where the members agree, and lowers the weight of a
    member's stray peak where they do not. It costs ``N`` forward passes per image.

    Built from members with a plain description (as :func:`build_heatmap_model` makes them), the
    ensemble has one too, so :meth:`~sslkeypoint.inference.KeypointPredictor.save`, checkpoint
    loading and :mod:`sslkeypoint.export` handle it like a single network.

    Args:
        members: The networks (at least one).

    Raises:
        ValueError: With no member, with members of different input channels (their
            ``in_chans``), or, at call time, when members return heatmaps of different shapes.

    Examples:
        >>> import torch
        >>> ones = torch.nn.Conv2d(1, 2, 1)
        >>> _ = torch.nn.init.zeros_(ones.weight), torch.nn.init.ones_(ones.bias)
        >>> zeros = torch.nn.Conv2d(1, 2, 1)
        >>> _ = torch.nn.init.zeros_(zeros.weight), torch.nn.init.zeros_(zeros.bias)
        >>> HeatmapEnsemble([ones, zeros, zeros, zeros])(torch.rand(1, 1, 4, 4))[0, 0, 0, 0].item()
        0.25
    """

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        members = list(members)
        if not members:
            raise ValueError("a HeatmapEnsemble needs at least one member network")
        chans = {int(getattr(m, "in_chans", getattr(getattr(m, "encoder", None), "in_chans", 0))) for m in members}
        chans.discard(0)
        if len(chans) > 1:
            raise ValueError(f"ensemble members take different input channels {sorted(chans)}; they must take the same images")
        self.members = nn.ModuleList(members)
        self.in_chans = chans.pop() if chans else 1
        specs = [getattr(m, "sslkeypoint_spec", None) for m in members]
        if all(isinstance(spec, Mapping) for spec in specs):
            # Kept on the module so a predictor can write the description back (KeypointPredictor.save).
            self.sslkeypoint_spec = {
                "members": [dict(spec) for spec in specs if spec is not None],
                "in_chans": self.in_chans,
                "num_keypoints": int(specs[0]["num_keypoints"]),  # type: ignore[index]
            }

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, H, W)`` images -> ``(B, K, h, w)``, the mean of the members' heatmaps."""
        total: Tensor | None = None
        for i, member in enumerate(self.members):
            heatmaps = member(x)
            if total is not None and heatmaps.shape != total.shape:
                raise ValueError(
                    f"ensemble member {i} returns heatmaps of shape {tuple(heatmaps.shape)}, member 0 "
                    f"{tuple(total.shape)}: members must predict the same landmarks at the same heatmap size"
                )
            total = heatmaps if total is None else total + heatmaps
        assert total is not None
        return total / len(self.members)


def build_heatmap_model(spec: Mapping[str, Any]) -> HeatmapUNet | HeatmapEnsemble:
    """Build a :class:`HeatmapUNet` from a plain model description (as stored in checkpoints).

    A description with ``members`` (a list of such descriptions, as a
    :class:`HeatmapEnsemble` stores) builds the ensemble of those networks.

    Args:
        spec: Mapping with ``encoder`` (a :func:`~sslkeypoint.encoders.create_encoder` name),
            optional ``encoder_kwargs`` (dict), ``in_chans`` (int), ``num_keypoints`` (int) and
            optional ``heatmap_stride`` (int, default 4).

    Returns:
        The (randomly initialised) model; ``spec`` is kept as its ``sslkeypoint_spec`` attribute.

    Raises:
        ValueError: If a required key is missing.

    Examples:
        >>> spec = {"encoder": "unet", "encoder_kwargs": {"widths": [4, 8], "bottleneck_width": 8},
        ...         "in_chans": 1, "num_keypoints": 2, "heatmap_stride": 2}
        >>> build_heatmap_model(spec).sslkeypoint_spec["num_keypoints"]
        2
    """
    if "members" in spec:
        members = spec["members"]
        if not isinstance(members, Sequence) or isinstance(members, str) or not members:
            raise ValueError(f"an ensemble's model spec needs a non-empty list of member specs; got {members!r}")
        return HeatmapEnsemble([build_heatmap_model(member) for member in members])
    for key in ("encoder", "in_chans", "num_keypoints"):
        if key not in spec:
            raise ValueError(f"model spec needs the key {key!r}; got keys {sorted(spec)}")
    kwargs = dict(spec.get("encoder_kwargs") or {})
    kwargs["in_chans"] = int(spec["in_chans"])
    encoder = create_encoder(str(spec["encoder"]), **kwargs)
    model = HeatmapUNet(encoder, int(spec["num_keypoints"]), heatmap_stride=int(spec.get("heatmap_stride", 4)))
    # Kept on the module so a predictor can write the description back (KeypointPredictor.save).
    model.sslkeypoint_spec = dict(spec)  # type: ignore[assignment]
    return model

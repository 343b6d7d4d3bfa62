"""The fine-tuned classifier: an encoder's image path with LoRA adapters or all weights trainable, plus a head.

`FineTuneModel(pixels)` runs `encoder.preprocess` on the uint8 batch, takes `encoder.encode_image(...)["embedding"]`
(the same embedding the cheap heads read from the store) and applies the head. Only the image tower
(`encoder.image_tower()`) is adapted; the text tower and anything else stays frozen and in eval mode.

LoRA goes through Hugging Face peft (`inject_adapter_in_model`, in place, so the encoder's own forward runs
through the adapters) on the module names in the encoder's `lora_targets` (documented per family in the
encoder registry: open_clip towers `attn`, `c_fc`, `c_proj`; timm ViT `qkv`, `proj`, `fc1`, `fc2`; torchvision
ResNet convolutions; HF Swin `query`, `key`, `value`, `dense`). With LoRA the tower's normalisation statistics
stay frozen too (batch-norm layers are kept in eval mode), so every weight and buffer of the tower is left
bit-identical; only the adapters and the head change.
"""

from __future__ import annotations

import torch
from torch import nn

from benchmark.core.errors import BenchError
from benchmark.finetune.config import FineTuneConfig

_NORM_WITH_STATS = (nn.modules.batchnorm._BatchNorm,)


def build_head(kind: str, embed_dim: int, num_classes: int, hidden: int = 1024) -> nn.Module:
    """The seed study's heads: `linear` (embedding -> classes) or `mlp` (-> hidden -> BatchNorm -> ReLU -> classes)."""
    if kind == "linear":
        return nn.Linear(embed_dim, num_classes)
    if kind == "mlp":
        return nn.Sequential(
            nn.Linear(embed_dim, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, num_classes)
        )
    raise BenchError(f"unknown head {kind!r}; choose linear or mlp")


class FineTuneModel(nn.Module):
    """Encoder image path + classification head; `forward(pixels uint8 [B, S, S]) -> logits [B, C]`."""

    def __init__(self, encoder: nn.Module, head: nn.Module, *, method: str) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.method = method
        self.num_classes = _out_features(head)
        self.tower_prefix = _module_prefix(self, encoder.image_tower())

    @property
    def tower(self) -> nn.Module:
        """The adapted image tower (a submodule of the encoder, not registered twice)."""
        return self.encoder.image_tower()

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        images = self.encoder.preprocess(pixels)
        embedding = self.encoder.encode_image(images)["embedding"]
        return self.head(embedding.float())

    def train(self, mode: bool = True) -> "FineTuneModel":
        """Train mode for the head and the tower only; with LoRA, frozen batch-norm statistics stay in eval."""
        self.training = mode
        self.encoder.eval()
        self.tower.train(mode)
        self.head.train(mode)
        if self.method == "lora":
            for module in self.tower.modules():
                if isinstance(module, _NORM_WITH_STATS):
                    module.eval()
        return self

    def trainable_names(self) -> list[str]:
        return [name for name, parameter in self.named_parameters() if parameter.requires_grad]

    def trainable_parameter_count(self) -> int:
        return sum(parameter.numel() for parameter in self.parameters() if parameter.requires_grad)

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """What training changes: trainable parameters, the head's buffers, and (full) the tower's buffers."""
        trainable = set(self.trainable_names())
        state = {}
        for name, tensor in self.state_dict().items():
            changes = (
                name in trainable
                or name.startswith("head.")
                or (self.method == "full" and name.startswith(self.tower_prefix))
            )
            if changes:
                state[name] = tensor.detach()
        return state

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        expected = set(self.trainable_state())
        if set(state) != expected:
            missing, unexpected = sorted(expected - set(state)), sorted(set(state) - expected)
            raise BenchError(
                f"checkpoint does not match this model (missing {missing[:3]}, unexpected {unexpected[:3]}); "
                "start afresh with --no-resume"
            )
        self.load_state_dict(state, strict=False)


def build_model(encoder: nn.Module, *, num_classes: int, config: FineTuneConfig) -> FineTuneModel:
    """Freeze the encoder, make its image tower trainable (LoRA adapters or every weight) and add a head.

    Adapter and head initialisation draw from torch's global generator: call inside `seeded(...)` for a
    reproducible model.
    """
    for parameter in encoder.parameters():
        parameter.requires_grad_(False)
    tower = encoder.image_tower()
    if config.method == "lora":
        apply_lora(tower, list(encoder.lora_targets), config)
    else:
        for parameter in tower.parameters():
            parameter.requires_grad_(True)
    head = build_head(config.head, int(encoder.embed_dim), num_classes, config.mlp_hidden)
    device = next(encoder.parameters()).device
    return FineTuneModel(encoder, head.to(device), method=config.method)


def apply_lora(tower: nn.Module, targets: list[str], config: FineTuneConfig) -> None:
    """Inject peft LoRA adapters into `tower` in place; only the adapters are left trainable."""
    from peft import LoraConfig, inject_adapter_in_model

    if not targets:
        raise BenchError("this encoder names no LoRA target modules (spec lora_targets); use --method full")
    lora_config = LoraConfig(
        r=config.lora_rank,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=targets,
        bias="none",
    )
    try:
        inject_adapter_in_model(lora_config, tower)
    except ValueError as error:
        raise BenchError(f"LoRA targets {targets} do not fit this image tower: {error}") from error
    for name, parameter in tower.named_parameters():
        parameter.requires_grad_("lora_" in name)
    _keep_attention_weights_exact(tower)


def _keep_attention_weights_exact(tower: nn.Module) -> None:
    """Make peft's LoRA on nn.MultiheadAttention leave the frozen projection weights bit-identical.

    peft adapts an nn.MultiheadAttention by merging the LoRA delta into `in_proj_weight` and `out_proj.weight`
    before each forward pass and subtracting it again afterwards; (W + d) - d is not W in floating point, so
    the frozen weights drift a little at every step (and a resumed run would not match). A forward hook puts
    the original values back after each call; the autograd graph keeps the merged tensor it used.
    """
    from peft.tuners.lora.layer import MultiheadAttention as LoraMultiheadAttention

    for module in tower.modules():
        if isinstance(module, LoraMultiheadAttention):
            base = module.get_base_layer()
            pristine = {
                "in": base.in_proj_weight.detach().clone(),
                "out": base.out_proj.get_base_layer().weight.detach().clone(),
            }
            module.register_forward_hook(_restore_attention_weights(pristine))


def _restore_attention_weights(pristine: dict[str, torch.Tensor]):
    def hook(module, inputs, output):
        base = module.get_base_layer()
        weight_in, weight_out = base.in_proj_weight, base.out_proj.get_base_layer().weight
        if pristine["in"].device != weight_in.device:
            pristine["in"], pristine["out"] = pristine["in"].to(weight_in.device), pristine["out"].to(weight_out.device)
        with torch.no_grad():
            weight_in.copy_(pristine["in"])
            weight_out.copy_(pristine["out"])

    return hook


def check_gradients_reach(model: FineTuneModel, pixels: torch.Tensor) -> list[str]:
    """One backward pass in eval mode (no statistics change); return trainable names that got no gradient.

    LoRA adapters that get none sit on modules the forward pass never calls (`out_proj` inside
    nn.MultiheadAttention is the known case) and would silently train nothing. Raises if the encoder's
    forward pass does not carry gradients at all.
    """
    was_training = model.training
    model.eval()
    model.zero_grad(set_to_none=True)
    logits = model(pixels)
    if not logits.requires_grad:
        raise BenchError(
            "the encoder's encode_image returns no gradient (is it wrapped in torch.no_grad?); "
            "fine-tuning needs a differentiable forward pass"
        )
    logits.float().sum().backward()
    unreached = [
        name for name, parameter in model.named_parameters() if parameter.requires_grad and parameter.grad is None
    ]
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return unreached


def _out_features(head: nn.Module) -> int:
    last = [module for module in head.modules() if isinstance(module, nn.Linear)][-1]
    return last.out_features


def _module_prefix(root: nn.Module, target: nn.Module) -> str:
    for name, module in root.named_modules():
        if module is target and name:
            return name + "."
    raise BenchError("the encoder's image_tower() is not one of its submodules; cannot fine-tune it")

"""The policy seam: which parameters train, which stay frozen, what the KL reference is.

`Policy` is built once per run (`run_setup.setup_run`) and is the only place that knows
the trainable mode (`rl.trainable`):

    mode   trainable tree (in TrainState)   frozen (jit input held fixed)   reference
    lora   the LoRA tree {a, b}             the pretrained base             base, LoRA absent
    full   a copy of every param            nothing (None)                  base (the initial
                                                                            params, kept apart)

Callers ask it, never the mode:

    trainable = policy.init_trainable(rng)                  # -> TrainState.trainable
    variables = policy.variables(policy.frozen, trainable)  # Flax variables of the policy
    reference = policy.reference                            # params, or None at rl.beta = 0
    completions = policy.sample(trainable, prompt_ids, rng, sampling_cfg, special_tokens)
    params, lora = policy.export_trees(trainable)           # host trees for export

Inside jitted code (train step, scorer) only `variables(frozen, trainable)` and
`reference_variables(reference)` are used: pure functions of their array arguments, so
the frozen base and the reference travel as jit inputs with their shardings and are
never baked into a program as constants.

The base is kept in every mode: in LoRA mode it *is* the frozen half of the policy; in
full mode it is the reference (the trainable copy moves away from it). At rl.beta = 0 in
full mode nothing reads it after `init_trainable`; it stays resident (one params copy)
because evaluation of the base and export read it; see BUILD_NOTES (policy seam).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from jax.sharding import Mesh

from rlvr_jax.models.decoder import Decoder
from rlvr_jax.models.layer_stack import per_layer_shapes, stack_layers, unstack_layers
from rlvr_jax.models.lora import LoraConfig, init_lora
from rlvr_jax.models.quantization import dequantize_params
from rlvr_jax.multihost import fetch_global, local_rows
from rlvr_jax.parallel import place_params
from rlvr_jax.sampling import Completions, SamplingConfig, SpecialTokens, generate

PyTree = Any
TRAINABLE_MODES = ("lora", "full")


def check_trainable_mode(mode: str) -> None:
    if mode not in TRAINABLE_MODES:
        raise ValueError(f"rl.trainable: unknown mode {mode!r}; choose one of {TRAINABLE_MODES}")


@dataclasses.dataclass(frozen=True)
class Policy:
    """The model, its frozen base, the trainable mode and the mesh (module docstring)."""

    model: Decoder
    base: PyTree  # the pretrained params, placed on `mesh` by the sharding rules; stacked
    # (models/layer_stack.py) when the model scans its layers
    mode: str  # one of TRAINABLE_MODES
    lora: LoraConfig  # the adapters' shape (unused in full mode)
    mesh: Mesh
    has_reference: bool  # rl.beta > 0: the loss reads reference log-probabilities

    def __post_init__(self):
        check_trainable_mode(self.mode)

    @classmethod
    def create(
        cls,
        model: Decoder,
        base: PyTree,
        mode: str,
        lora: LoraConfig,
        mesh: Mesh,
        has_reference: bool,
    ) -> Policy:
        """A policy whose base is placed on `mesh` (arrays already there are not copied),
        its layers stacked once if the model scans them (no step then copies the base)."""
        if model.scan_layers:
            base = stack_layers(base)
        return cls(model, place_params(base, mesh), mode, lora, mesh, has_reference)

    def for_training(self, remat: str) -> Policy:
        """This policy with its model rematerializing layers in the backward (`rl.remat`):
        same params and values, less activation memory. The sampler keeps `self.model`.

        A rematerialized model scans its layers (`Decoder.remat`); a per-layer base is then
        stacked inside each train step (a copy of the base among its temporaries: 0.43 GB
        for SmolLM2-135M), which `model.scan_layers` avoids at some decode speed."""
        if remat == self.model.remat:
            return self
        scan = self.model.scan_layers or remat != "none"
        return dataclasses.replace(self, model=self.model.clone(remat=remat, scan_layers=scan))

    @property
    def is_lora(self) -> bool:
        return self.mode == "lora"

    def init_trainable(self, rng: jax.Array) -> PyTree:
        """The LoRA tree (b = 0: the policy starts as the base), or a copy of the base.

        The copy matters in full mode: the train step donates the state, and the base
        must survive as the reference. `rng` is the run's LoRA-init key (`rng_streams`).
        """
        if self.is_lora:
            return self.init_lora(rng)
        return jax.tree.map(jnp.copy, self.base)

    def init_lora(self, rng: jax.Array) -> PyTree:
        """A fresh LoRA tree on this base, per layer whether or not the model scans its
        layers (the same tree, checkpoint and PEFT export either way)."""
        return init_lora(per_layer_shapes(self.base), self.lora, rng)

    @property
    def frozen(self) -> PyTree | None:
        """What the train step holds fixed and passes as a jit input: the base with LoRA."""
        return self.base if self.is_lora else None

    def variables(self, frozen: PyTree | None, trainable: PyTree) -> dict[str, PyTree]:
        """Flax variables of the policy; pure (jit-safe): reads only the mode from `self`."""
        if self.is_lora:
            return {"params": frozen, "lora": trainable}
        return {"params": trainable}

    def live_variables(self, trainable: PyTree) -> dict[str, PyTree]:
        """`variables` with this policy's own frozen base (outside jit, or as a jit input)."""
        return self.variables(self.frozen, trainable)

    @property
    def reference(self) -> PyTree | None:
        """The params of the KL reference (the base, LoRA absent), None when unused."""
        return self.base if self.has_reference else None

    @staticmethod
    def reference_variables(reference: PyTree) -> dict[str, PyTree]:
        """Flax variables of the reference policy: the params alone."""
        return {"params": reference}

    def sample(
        self,
        trainable: PyTree | None,
        prompts: Sequence[Sequence[int]],
        rng: jax.Array,
        cfg: SamplingConfig,
        tokens: SpecialTokens,
    ) -> Completions:
        """Completions of the policy for this process's `prompts`, as host arrays of this
        process's rows; `trainable=None` samples the base model itself.

        Generation is data parallel on the policy's mesh (`sampling/generate.py`): rows
        sharded over the batch axes, params with their train-step shardings.
        """
        variables = (
            self.reference_variables(self.base)
            if trainable is None
            else self.live_variables(trainable)
        )
        out = generate(self.model, variables, prompts, rng, cfg, tokens, self.mesh)
        return jax.tree.map(local_rows, out)

    def export_trees(self, trainable: PyTree) -> tuple[PyTree, PyTree | None]:
        """Host copies of `(params, lora)`: base + LoRA tree, or the trained params alone;
        a quantized base comes back dequantized (the merged export is a float checkpoint).

        A collective in a multi-process run (sharded leaves are gathered): call it on
        every process.
        """
        trees = (self.base, trainable) if self.is_lora else (trainable, None)
        params, lora = fetch_global(trees)
        return dequantize_params(unstack_layers(params)), lora  # float, per layer

"""The typed experiment config: one frozen dataclass per config group.

`ExperimentConfig.from_config_dict(config)` converts the ml_collections config of a
`configs/*.py` file once, at the boundary. Each group is validated by its own dataclass
(errors name the dotted key); cross-group rules (divisibility, derived values) live here.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from rlvr_jax.checkpoints import CheckpointConfig
from rlvr_jax.compile_cache import CompileCacheConfig
from rlvr_jax.config_builder import ConfigError, build
from rlvr_jax.health import HealthConfig
from rlvr_jax.models.lora import LoraConfig
from rlvr_jax.models.quantization import QuantizationConfig
from rlvr_jax.observers.config import ObserversConfig
from rlvr_jax.optim import OptimConfig
from rlvr_jax.parallel import MeshConfig
from rlvr_jax.policy import check_trainable_mode
from rlvr_jax.rewards import RewardsConfig
from rlvr_jax.rl.advantages import ADVANTAGE_ESTIMATORS
from rlvr_jax.rl.dpo import DPOConfig
from rlvr_jax.rl.losses import LossConfig
from rlvr_jax.rl.off_policy import OffPolicyConfig
from rlvr_jax.rl.ppo import PPOConfig
from rlvr_jax.rl.train_step import OffPolicyCorrection, TrainStepConfig
from rlvr_jax.sampling import SamplingConfig
from rlvr_jax.tasks import DataConfig, PromptConfig
from rlvr_jax.tasks.mixture import Task, resolve_tasks

DTYPES = ("float32", "bfloat16")
ALGORITHMS = ("grpo", "ppo", "dpo")  # rl/algorithm.py


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Which checkpoint, in which dtype (`config.model`)."""

    checkpoint: str  # preset name, .gguf path, local HF directory, or hub id
    dtype: str  # parameter and activation dtype: 'float32' | 'bfloat16'
    cache_dir: str  # converted GGUF / preset checkpoints; '' = ~/.cache/rlvr_jax/gguf
    quantization: QuantizationConfig  # weight-only int8 / nf4 of the frozen base (LoRA runs)
    scan_layers: bool  # one compiled layer body under lax.scan (models/layer_stack.py)

    def __post_init__(self):
        if not self.checkpoint:
            raise ConfigError("model.checkpoint: must name a checkpoint")
        if self.dtype not in DTYPES:
            raise ConfigError(f"model.dtype: unsupported {self.dtype!r}; choose one of {DTYPES}")


@dataclasses.dataclass(frozen=True)
class DynamicSamplingConfig:
    """DAPO's over-sample-and-filter (`config.rl.dynamic_sampling`)."""

    enabled: bool  # keep only groups whose rewards vary
    max_rounds: int  # batches of prompts drawn at most per RL step

    def __post_init__(self):
        if self.max_rounds < 1:
            raise ConfigError(f"rl.dynamic_sampling.max_rounds must be >= 1, got {self.max_rounds}")


@dataclasses.dataclass(frozen=True)
class RLConfig:
    """The algorithm (`config.rl`); which keys each algorithm reads: rl/algorithm.py."""

    algorithm: str  # grpo (GRPO family) | ppo (critic + GAE) | dpo (online, verified pairs)
    prompts_per_step: int  # B: prompts per RL step; the batch has R = B * G completions
    advantage: str  # grpo only: rl/advantages.py ADVANTAGE_ESTIMATORS
    advantage_eps: float  # added to the std in grpo / batch normalization
    loss_type: str  # rl/losses.py POLICY_LOSSES (grpo, bnpo, dapo, dr_grpo, gspo, cispo)
    eps_low: float  # ratio clip 1 - eps_low
    eps_high: float  # ratio clip 1 + eps_high (> eps_low: DAPO clip-higher)
    dual_clip: float | None  # None or c > 1: dual-clip bound for A < 0
    beta: float  # KL coefficient to the reference (base without LoRA); 0 = no reference
    # (dpo: DPO's beta, > 0)
    kl_estimator: str  # k1 | k2 | k3
    num_iterations: int  # mu: optimizer updates per rollout batch
    num_microbatches: int  # gradient accumulation steps per update
    trainable: str  # 'lora' | 'full' (policy.TRAINABLE_MODES)
    # layers recomputed in the backward: 'none' | 'full' | 'save_dots' | 'save_attention'
    # | 'save_attention_mlp' | 'save_qkv_attention_mlp' (models.decoder.REMAT_POLICIES)
    remat: str
    dynamic_sampling: DynamicSamplingConfig  # DAPO: keep groups whose rewards vary
    off_policy: OffPolicyConfig  # importance weights sampler -> trainer (grpo, ppo)
    ppo: PPOConfig
    dpo: DPOConfig

    def __post_init__(self):
        check_trainable_mode(self.trainable)
        if self.algorithm not in ALGORITHMS:
            raise ConfigError(
                f"rl.algorithm: unknown {self.algorithm!r}; choose one of {ALGORITHMS}"
            )
        if self.off_policy.enabled and self.algorithm == "dpo":
            raise ConfigError(
                f"rl.off_policy.correction = {self.off_policy.correction!r}: applies to "
                "rl.algorithm 'grpo' and 'ppo' (DPO's loss has no per-token weights)"
            )
        if self.algorithm == "dpo" and not self.beta > 0:
            raise ConfigError(
                f"rl.beta = {self.beta}: dpo needs beta > 0 (DPO's beta, the strength of "
                "the KL to the reference; 0.1 is the paper's value)"
            )
        if self.prompts_per_step < 1:
            raise ConfigError(f"rl.prompts_per_step must be >= 1, got {self.prompts_per_step}")
        if self.advantage not in ADVANTAGE_ESTIMATORS:
            raise ConfigError(
                f"rl.advantage: unknown estimator {self.advantage!r}; "
                f"choose one of {sorted(ADVANTAGE_ESTIMATORS)}"
            )


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Held-out evaluation during training and in scripts/eval.py (`config.eval`)."""

    every_steps: int  # evaluate every N RL steps (and at step 0 and the end); 0 = never
    max_samples: int  # questions scripts/eval.py evaluates; 0 = the whole split
    train_max_samples: int  # questions of the periodic evaluation during training; 0 = all
    batch_size: int  # prompts per sampler call
    num_samples: int  # n samples per question for pass@k / maj@k; 0 = greedy only
    temperature: float  # sampling temperature of those n samples
    max_new_tokens: int  # completion budget at evaluation
    ks: tuple[int, ...]  # k values reported for pass@k and maj@k (each <= num_samples)
    confidence: float  # bootstrap confidence interval level
    num_resamples: int  # bootstrap resamples

    def __post_init__(self):
        if self.every_steps < 0:
            raise ConfigError(f"eval.every_steps must be >= 0, got {self.every_steps}")
        if self.batch_size < 1:
            raise ConfigError(f"eval.batch_size must be >= 1, got {self.batch_size}")
        if not 0.0 < self.confidence < 1.0:
            raise ConfigError(f"eval.confidence must be in (0, 1), got {self.confidence}")
        if self.num_resamples < 100:
            raise ConfigError(f"eval.num_resamples must be >= 100, got {self.num_resamples}")
        bad = [k for k in self.ks if not 1 <= k <= max(self.num_samples, 1)]
        if self.num_samples and bad:
            raise ConfigError(f"eval.ks: {bad} not in [1, eval.num_samples={self.num_samples}]")


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    model: ModelConfig
    lora: LoraConfig
    data: DataConfig
    prompt: PromptConfig
    rewards: RewardsConfig
    sampling: SamplingConfig
    rl: RLConfig
    optim: OptimConfig
    mesh: MeshConfig
    eval: EvalConfig
    checkpoint: CheckpointConfig
    observers: ObserversConfig
    health: HealthConfig
    compile_cache: CompileCacheConfig
    seed: int  # model init, LoRA init, sampling
    max_steps: int  # RL steps; a resumed run continues up to this

    def __post_init__(self):
        if self.model.quantization.format != "none" and self.rl.trainable != "lora":
            raise ConfigError(
                f"model.quantization.format = {self.model.quantization.format!r}: a quantized "
                "base is frozen; it needs rl.trainable = 'lora'"
            )
        if self.max_steps < 0:
            raise ConfigError(f"max_steps must be >= 0, got {self.max_steps}")
        if self.optim.total_steps != self.max_steps * self.rl.num_iterations:
            raise ConfigError(
                f"optim.total_steps ({self.optim.total_steps}) must equal max_steps * "
                f"rl.num_iterations ({self.max_steps * self.rl.num_iterations}): the "
                "schedule counts optimizer updates"
            )
        try:  # the derived component configs validate themselves
            self.loss_config()
            self.train_step_config()
        except ConfigError:
            raise
        except ValueError as e:
            raise ConfigError(str(e)) from e
        _ = self.tasks  # the mixture's tasks build (and validate) their sections here
        if self.train_rows % self.rl.num_microbatches:
            raise ConfigError(
                f"rl.num_microbatches ({self.rl.num_microbatches}) must divide the batch "
                f"{self.train_rows_formula} = {self.train_rows}"
            )

    @classmethod
    def from_config_dict(cls, config: Any) -> ExperimentConfig:
        return build(cls, config, "")

    @functools.cached_property
    def tasks(self) -> tuple[Task, ...]:
        """The tasks trained on: `data.mixture`'s, or one made of the data, prompt and
        rewards sections (tasks/mixture.py)."""
        return resolve_tasks(self.data, self.prompt, self.rewards)

    @property
    def is_mixture(self) -> bool:
        return bool(self.data.mixture)

    @property
    def train_rows(self) -> int:
        """Rows of one update's batch: completions (grpo, ppo) or pairs (dpo)."""
        rl = self.rl
        per_prompt = rl.dpo.pairs_per_prompt if rl.algorithm == "dpo" else self.sampling.num_samples
        return rl.prompts_per_step * per_prompt

    @property
    def train_rows_formula(self) -> str:
        per_prompt = (
            "rl.dpo.pairs_per_prompt" if self.rl.algorithm == "dpo" else "sampling.num_samples"
        )
        return f"rl.prompts_per_step * {per_prompt}"

    def loss_config(self) -> LossConfig:
        """The policy loss of grpo and ppo. Its beta is the KL coefficient *in the loss*: 0
        when ppo puts the KL in the reward (``rl.ppo.kl_penalty = 'reward'``)."""
        rl = self.rl
        kl_in_reward = rl.algorithm == "ppo" and rl.ppo.kl_penalty == "reward"
        return LossConfig(
            loss_type=rl.loss_type,
            eps_low=rl.eps_low,
            eps_high=rl.eps_high,
            dual_clip=rl.dual_clip,
            beta=0.0 if kl_in_reward else rl.beta,
            kl_estimator=rl.kl_estimator,
            max_completion_len=self.sampling.max_new_tokens,
        )

    def train_step_config(self) -> TrainStepConfig:
        off_policy = self.rl.off_policy
        return TrainStepConfig(
            num_microbatches=self.rl.num_microbatches,
            num_iterations=self.rl.num_iterations,
            group_size=self.sampling.num_samples,
            remat=self.rl.remat,
            off_policy=(
                OffPolicyCorrection(off_policy, self.sampling) if off_policy.enabled else None
            ),
        )

"""The optimizer: global-norm clipping, then AdamW with a learning-rate schedule.

Schedules (``s`` = optimizer step, 0 for the first update; ``W`` warmup steps, ``S`` total
steps, ``lr`` peak, ``lr_min = min_lr_ratio * lr``):

    warmup (both, if W > 0)  lr(s) = lr * (s + 1) / W                            for s < W
    constant                 lr(s) = lr                                          for s >= W
    warmup_cosine            lr(s) = lr_min + (lr - lr_min) (1 + cos(pi p)) / 2  for s >= W,
                             p = min((s - W) / (S - W), 1)

The warmup starts at ``lr / W`` rather than 0 so that no update (and no rollout) is wasted.
"""

import dataclasses

import jax.numpy as jnp
import optax

SCHEDULES = ("constant", "warmup_cosine")


@dataclasses.dataclass(frozen=True)
class OptimConfig:
    """Optimizer hyperparameters; every field is a config key under ``optim``."""

    learning_rate: float  # peak learning rate
    schedule: str  # 'constant' | 'warmup_cosine'
    warmup_steps: int  # linear warmup steps (0 = none)
    total_steps: int  # S: where warmup_cosine reaches min_lr_ratio * learning_rate
    min_lr_ratio: float  # final lr / peak lr for warmup_cosine
    weight_decay: float  # decoupled (AdamW) weight decay
    b1: float
    b2: float
    eps: float
    max_grad_norm: float | None  # clip the global gradient norm to this; None = no clipping

    def __post_init__(self):
        if not self.learning_rate > 0:
            raise ValueError(f"optim.learning_rate must be > 0, got {self.learning_rate}")
        if self.schedule not in SCHEDULES:
            raise ValueError(
                f"optim.schedule: unknown schedule {self.schedule!r}; choose one of {SCHEDULES}"
            )
        if self.warmup_steps < 0:
            raise ValueError(f"optim.warmup_steps must be >= 0, got {self.warmup_steps}")
        if self.total_steps < 1:
            raise ValueError(f"optim.total_steps must be >= 1, got {self.total_steps}")
        if self.schedule == "warmup_cosine" and not self.warmup_steps < self.total_steps:
            raise ValueError(
                f"optim.warmup_steps ({self.warmup_steps}) must be < optim.total_steps "
                f"({self.total_steps}) for the warmup_cosine schedule"
            )
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"optim.min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if not self.weight_decay >= 0.0:
            raise ValueError(f"optim.weight_decay must be >= 0, got {self.weight_decay}")
        for key in ("b1", "b2"):
            if not 0.0 <= getattr(self, key) < 1.0:
                raise ValueError(f"optim.{key} must be in [0, 1), got {getattr(self, key)}")
        if not self.eps > 0.0:
            raise ValueError(f"optim.eps must be > 0, got {self.eps}")
        if self.max_grad_norm is not None and not self.max_grad_norm > 0.0:
            raise ValueError(f"optim.max_grad_norm must be None or > 0, got {self.max_grad_norm}")


def make_schedule(cfg: OptimConfig) -> optax.Schedule:
    """The learning rate as a function of the optimizer step (see the module docstring)."""
    peak = cfg.learning_rate
    low = cfg.min_lr_ratio * peak
    warmup = cfg.warmup_steps

    def schedule(step):
        s = jnp.asarray(step, jnp.float32)
        if cfg.schedule == "constant":
            after = jnp.full_like(s, peak)
        else:
            progress = jnp.clip((s - warmup) / (cfg.total_steps - warmup), 0.0, 1.0)
            after = low + (peak - low) * 0.5 * (1.0 + jnp.cos(jnp.pi * progress))
        if warmup == 0:
            return after
        return jnp.where(s < warmup, peak * (s + 1.0) / warmup, after)

    return schedule


def make_optimizer(cfg: OptimConfig) -> optax.GradientTransformation:
    """``clip_by_global_norm(max_grad_norm)`` (if set), then AdamW with :func:`make_schedule`."""
    adamw = optax.adamw(
        make_schedule(cfg), b1=cfg.b1, b2=cfg.b2, eps=cfg.eps, weight_decay=cfg.weight_decay
    )
    if cfg.max_grad_norm is None:
        return adamw
    return optax.chain(optax.clip_by_global_norm(cfg.max_grad_norm), adamw)

"""The embedded default: SmolLM2-135M-Instruct learns 2-digit addition with GRPO + LoRA on a CPU.

    python scripts/train.py --config=configs/arithmetic.py --workdir=runs/arithmetic
    python scripts/train.py --config=configs/arithmetic.py --config.max_steps=20 \
        --config.rl.beta=0.0 --workdir=runs/quick

Everything below is a config key; `--config.<group>.<key>=value` overrides any of them.
"""

from ml_collections import config_dict


def get_config() -> config_dict.ConfigDict:
    c = config_dict.ConfigDict()
    c.seed = 0  # model/LoRA init and sampling
    c.max_steps = 36  # RL steps (rollout + update); a resumed run continues up to this

    c.model = dict(
        checkpoint="smollm2-135m-instruct",  # preset, .gguf path, HF directory or hub id
        dtype="float32",  # 'float32' | 'bfloat16'
        cache_dir="",  # converted checkpoints; '' = ~/.cache/rlvr_jax/gguf
        quantization=dict(  # weight-only, of the frozen base (rlvr_jax/models/quantization.py)
            format="none",  # 'none' | 'int8' (per output channel) | 'nf4' (QLoRA, blockwise)
            block_size=64,  # nf4: input rows per absmax block
            double_quant=False,  # nf4: absmaxes stored as uint8
        ),
        scan_layers=False,  # True: one layer body under lax.scan (faster compile, slower decode)
    )
    c.lora = dict(
        rank=8,  # r
        alpha=16.0,  # scale alpha / r (alpha / sqrt(r) with rslora)
        targets=("q", "k", "v", "o", "gate", "up", "down"),  # projections with adapters
        rslora=False,  # rank-stabilized scaling
    )
    c.data = dict(
        name="arithmetic",  # arithmetic | countdown | gsm8k | jsonl | math | finqa | module:fn
        path="",  # gsm8k/jsonl: hub id, directory or file
        subset="",  # hub config name (gsm8k: 'main')
        split="train",  # training split
        eval_split="test",  # held-out split ('' = no evaluation)
        max_samples=0,  # first N training rows after shuffling; 0 = all
        eval_max_samples=0,  # first N eval rows; 0 = all (see also eval.max_samples)
        shuffle=True,  # shuffle training rows by data.seed
        seed=0,  # shuffling, epoch order and synthetic instances
        question_field="question",  # jsonl only
        answer_field="answer",  # jsonl only
        answer_rule="auto",  # jsonl: auto | after_hashes | last_boxed | regex | column
        answer_regex="",  # answer_rule 'regex': one group, e.g. r"answer is (\S+)"
        max_prompt_tokens=0,  # drop rows whose rendered prompt is longer; 0 = keep all
        arithmetic=dict(
            operators=("+",),  # drawn uniformly
            min_value=10,  # operands in [min_value, max_value]
            max_value=99,
            num_train=5000,  # distinct training problems
            num_eval=200,  # distinct held-out problems (disjoint from train)
            holdout_fraction=0.1,  # share of all problems reserved for eval
        ),
        countdown=dict(
            min_count=3,
            max_count=4,
            min_number=1,
            max_number=99,
            min_target=1,
            max_target=100,
            operators=("+", "-", "*", "/"),
            num_train=5000,
            num_eval=200,
            holdout_fraction=0.1,
        ),
        curriculum=dict(  # which prompts a batch draws (rlvr_jax/tasks/curriculum.py)
            mode="none",  # 'none' (epoch order) | 'pass_rate_band' | 'difficulty_order'
            band_low=0.2,  # pass_rate_band: favour prompts whose EMA pass rate is in [low, high]
            band_high=0.8,
            ema_rate=0.5,  # weight of a step's pass rate in each prompt's EMA
            out_of_band_weight=0.1,  # sampling weight of a prompt outside the band (inside: 1)
            difficulty_field="",  # difficulty_order: the row field sorted ascending
        ),
        # Multi-task: {task: dict(weight, data, prompt, rewards)}, each holding the keys of
        # those sections that differ for the task (configs/mixture.py); {} = single task.
        mixture={},
    )
    c.prompt = dict(
        style="no_system",  # the model's own chat template default (best for SmolLM2-135M)
        system_prompt="",  # '' = the style's built-in prompt
        user_template="{question}",  # the user turn; may use row fields and markers
        reasoning_start="",  # '' = the model's markers
        reasoning_end="",
        answer_start="",
        answer_end="",
        few_shot=0,  # worked examples before the question
    )
    c.rewards = dict(
        fns=[
            # The last integer of the completion must equal the sum: formatting cannot score.
            dict(name="answer_match", weight=1.0, params=dict(mode="lenient")),
        ],
        on_error="raise",  # 'raise' stops the run naming the reward; 'zero' scores 0
        correctness="answer_match",  # the verifier whose verdict is "correct"
    )
    c.sampling = dict(
        num_samples=8,  # G: completions per prompt
        max_new_tokens=48,  # L
        temperature=0.7,  # 0 = greedy
        top_k=0,  # 0 = off
        top_p=1.0,  # 1.0 = off
        extra_stop_token_ids=(),  # in addition to the tokenizer's EOS
        prompt_buckets=(48, 64, 128, 256),  # prompts are left-padded to one of these
    )
    c.rl = dict(
        algorithm="grpo",  # grpo | ppo | dpo (configs/arithmetic_ppo.py, arithmetic_dpo.py)
        prompts_per_step=8,  # P; the batch is P * G completions
        advantage="grpo",  # grpo only: grpo | dr_grpo | rloo | batch | reinforce_pp(_baseline)
        advantage_eps=1e-4,  # added to the group std
        loss_type="grpo",  # grpo | bnpo | dapo | dr_grpo | gspo | cispo
        eps_low=0.2,  # ratio clip 1 - eps_low
        eps_high=0.2,  # ratio clip 1 + eps_high (DAPO: 0.28)
        dual_clip=config_dict.placeholder(float),  # None or c > 1
        beta=0.04,  # KL coefficient to the base model; 0 skips the reference forward
        kl_estimator="k3",  # k1 | k2 | k3
        num_iterations=1,  # mu: updates per rollout batch
        num_microbatches=1,  # gradient accumulation steps
        trainable="lora",  # 'lora' | 'full'
        # recompute layers in the backward: 'none' | 'full' | 'save_dots'. 'full' halves
        # the peak RSS at 32 tokens (7674 -> 3888 MB) for 3-6% more step time (BUILD_NOTES).
        remat="full",
        dynamic_sampling=dict(  # DAPO over-sample and filter (rlvr_jax/dynamic_sampling.py)
            enabled=False,  # keep only groups whose rewards vary, drawing more prompts
            max_rounds=4,  # batches of prompts drawn at most per RL step
        ),
        off_policy=dict(  # importance weights sampler -> trainer (rlvr_jax/rl/off_policy.py)
            correction="none",  # 'none' | 'tis' (truncate at cap) | 'mis' (mask beyond cap)
            level="token",  # 'token' | 'sequence' (product of the token ratios)
            cap=2.0,  # C
        ),
        ppo=dict(  # read by rl.algorithm = 'ppo' only (rlvr_jax/rl/ppo.py)
            critic="shared",  # 'shared': value head on the policy's backbone | 'separate' LoRA
            gamma=1.0,  # discount over completion tokens
            gae_lambda=1.0,  # 1 = Monte Carlo returns (verl's default; 0.95 stalled the toy task)
            value_coef=0.1,  # weight of the value loss
            value_clip=0.2,  # clip of V - V_old in the value loss; None = off
            critic_learning_rate=1e-3,
            critic_warmup_steps=0,  # first RL steps that train only the critic
            whiten_advantages=True,  # normalize GAE advantages over the batch's tokens
            kl_penalty="reward",  # 'reward': -beta * kl per token | 'loss': as GRPO
        ),
        dpo=dict(  # read by rl.algorithm = 'dpo' only (rlvr_jax/rl/dpo.py); its beta: rl.beta
            loss="sigmoid",  # 'sigmoid' (DPO) | 'ipo'
            pairs_per_prompt=4,  # at most this many (accepted, rejected) pairs per prompt
        ),
    )
    c.optim = dict(
        learning_rate=4e-4,
        schedule="constant",  # 'constant' | 'warmup_cosine'
        warmup_steps=0,
        # Optimizer updates; follows overrides of max_steps and rl.num_iterations.
        total_steps=c.get_ref("max_steps") * c.rl.get_ref("num_iterations"),
        min_lr_ratio=0.1,
        weight_decay=0.0,
        b1=0.9,
        b2=0.99,
        eps=1e-8,
        max_grad_norm=1.0,  # global-norm clipping; None = off
    )
    c.mesh = dict(data=-1, fsdp=1)  # -1 = all remaining devices
    c.eval = dict(
        every_steps=12,  # and at step 0 and at the end; 0 = never
        max_samples=0,  # questions scripts/eval.py evaluates; 0 = the whole split
        train_max_samples=200,  # questions of the periodic evaluation during training; 0 = all
        batch_size=64,  # prompts per sampler call
        num_samples=0,  # n samples per question for pass@k / maj@k; 0 = greedy only
        temperature=0.7,  # of the n samples (the training temperature)
        max_new_tokens=48,
        ks=(1,),  # k values of pass@k and maj@k (each <= num_samples)
        confidence=0.95,  # bootstrap interval level
        num_resamples=2000,  # bootstrap resamples
    )
    c.compile_cache = dict(  # JAX's persistent compilation cache (rlvr_jax/compile_cache.py)
        enabled=True,  # a restart or resume reuses what it compiled before
        dir="",  # '' = ~/.cache/rlvr_jax/xla
        min_compile_seconds=1.0,  # programs that compiled faster are not stored
    )
    c.checkpoint = dict(
        every_steps=10,  # and at the end, and on SIGTERM/SIGINT
        max_to_keep=2,  # newest checkpoints kept on disk
        # Resuming refuses a config that differs from the checkpoint's outside the safe keys
        # (rlvr_jax/resume.py: max_steps, eval.*, observers.*, ...); True accepts any change.
        allow_config_changes=False,
    )
    c.observers = dict(
        console=True,
        jsonl=True,  # <workdir>/metrics.jsonl and samples.jsonl
        tensorboard=True,  # <workdir>/tensorboard
        wandb=False,  # needs `pip install 'rlvr_jax[wandb]'`
        wandb_project="rlvr_jax",
        wandb_entity="",
        wandb_run_name="",
        sample_every=10,  # log a few completions every N steps
        num_samples_to_log=3,
        log_every=1,
        third_party_logging=False,  # True: Orbax/JAX/absl/datasets INFO records on the console too
        custom=(),  # your sinks by import path 'module:factory', factory(config, workdir) -> Observer
    )
    c.health = dict(  # training-health alerts (rlvr_jax/health.py); a threshold None = off
        entropy_metric="policy/entropy",  # the entropy that entropy_collapse watches
        entropy_collapse=0.1,  # alert when it falls below this x its step-1 value
        hacking_window=8,  # W: steps over which reward_hacking compares rises
        hacking_rise=0.2,  # alert when a reward/<label>/mean rises by more than this ...
        hacking_correct_rise=0.0,  # ... while reward/correct_frac rises by at most this
        max_clip_frac=0.2,  # alert above: policy/clip_frac_low + policy/clip_frac_high
        max_kl=0.5,  # alert above: kl/mean
        max_zero_std=0.9,  # alert above: frac_zero_std (groups without reward variance)
        max_truncated=0.5,  # alert above: completion/truncated_frac
        stop_on=(),  # alerts that save a checkpoint and stop the run, e.g. ('kl',)
    )
    return c

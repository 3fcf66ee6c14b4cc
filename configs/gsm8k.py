"""GSM8K with reasoning/answer markers and the seed's reward mix.

    python scripts/train.py --config=configs/gsm8k.py --workdir=/ckpt/gsm8k
    # a local copy instead of the hub:
    python scripts/train.py --config=configs/gsm8k.py --config.data.path=../shared/data/gsm8k
    # Qwen2.5 on a GPU:
    python scripts/train.py --config=configs/gsm8k.py \
        --config.model.checkpoint=Qwen/Qwen2.5-1.5B-Instruct --config.model.dtype=bfloat16 \
        --config.rl.beta=0.0 --config.sampling.max_new_tokens=512 --workdir=/ckpt/qwen
    # Gemma 3 on a TPU pod (8 x 4 mesh):
    python scripts/train.py --config=configs/gsm8k.py \
        --config.model.checkpoint=google/gemma-3-1b-it --config.model.dtype=bfloat16 \
        --config.mesh.data=8 --config.mesh.fsdp=4 --workdir=gs://bucket/gemma
"""

from rlvr_jax.config_builder import sibling_config


def get_config():
    c = sibling_config(__file__, "arithmetic")
    c.max_steps = 500
    c.data.name = "gsm8k"
    c.data.path = "openai/gsm8k"  # hub id; or a local directory with train/test jsonl
    c.data.subset = "main"
    c.data.split = "train"
    c.data.eval_split = "test"
    c.prompt.style = "reasoning"  # reasoning between markers, answer between markers
    c.rewards.fns = [
        # The seed's mix (Unsloth GRPO recipe): exact layout, per-marker counts, answer tiers.
        dict(name="format_exact", weight=1.0, params=dict(matched=3.0, unmatched=0.0)),
        dict(name="format_approx", weight=1.0, params=dict(once=0.5, otherwise=-0.5)),
        dict(
            name="answer_match",
            weight=1.0,
            params=dict(
                mode="strict",
                correct=3.0,
                wrong=-1.0,
                missing=0.0,
                tolerance_tiers=((0.1, 0.5), (0.2, 0.25)),
            ),
        ),
        # "numbers": the last number anywhere equals the answer.
        dict(
            name="answer_match",
            label="numbers",
            weight=1.0,
            params=dict(mode="lenient", correct=1.5, wrong=0.0, missing=0.0),
        ),
    ]
    c.rewards.correctness = "answer_match"
    c.sampling.max_new_tokens = 256
    # GSM8K's chat prompts are 59-146 tokens (zero-shot): a 160 bucket instead of 256 cuts
    # the prompt's padded slots from 110 to 14 (prefix forward and attention keys).
    c.sampling.prompt_buckets = (128, 160, 192, 256, 320, 384, 512, 768, 1024)
    c.rl.prompts_per_step = 8
    # 64 rows x 256 tokens, XLA temporaries of the train step (scripts/memory_analysis.py):
    # 30.7 GB without remat, 3.2 GB with full remat (rl.remat, scanned layers), 1.9 GB in
    # two micro-batches (the same gradient). One prompt per micro-batch, keeping the
    # attention output and the MLP's gate/up (recomputing the rest) holds 1.8 GB and took
    # 126 s a step against full remat's 154 s in two (BUILD_NOTES, ninth session); 3.0 GB
    # at 512 new tokens. Keeping the query, key and value too: 96.6 s against 104.5 for
    # 0.2 GB more peak (twelfth session).
    c.rl.remat = "save_qkv_attention_mlp"
    c.rl.num_microbatches = 8
    c.eval.every_steps = 50
    c.eval.max_samples = 0  # scripts/eval.py: all 1319 test questions
    c.eval.train_max_samples = 200
    c.eval.max_new_tokens = 256
    # 16 questions x (1 + 8) rows per sampler call: at 256 tokens this CPU evaluated a
    # question in 10.8 s at 16 (startup included) and 13.2 s at 40 (BUILD_NOTES).
    c.eval.batch_size = 16
    c.checkpoint.every_steps = 25
    return c

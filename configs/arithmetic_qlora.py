"""QLoRA on the embedded default task: the frozen SmolLM2 base in NF4 (4-bit, blocks of 64),
LoRA adapters in float32, layers scanned so one layer's dequantized kernels are live at a
time (models/decoder.py, `quantized_matmul`).

Everything else (task, prompts, GRPO, 8 x 8 samples, steps) is configs/arithmetic.py's.

    python scripts/train.py --config=configs/arithmetic_qlora.py --workdir=runs/arithmetic_qlora
"""

from rlvr_jax.config_builder import sibling_config


def get_config():
    c = sibling_config(__file__, "arithmetic")
    c.model.quantization.format = "nf4"
    c.model.quantization.block_size = 64
    c.model.scan_layers = True
    return c

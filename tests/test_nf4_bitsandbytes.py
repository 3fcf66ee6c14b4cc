"""Our NF4 is bitsandbytes' NF4: the same block absmaxes and the same dequantized weights,
bit for bit (QLoRA's reference implementation, CPU path). Double quantization is ours
(uint8 absmaxes with a per-column scale), not bitsandbytes' 8-bit blockwise scheme, and is
not compared."""

import bitsandbytes.functional as F
import numpy as np
import pytest
import torch

from rlvr_jax.models.quantization import quantize_nf4


@pytest.mark.parametrize("shape_out_in,block", [((96, 128), 64), ((1536, 576), 64), ((64, 96), 32)])
def test_nf4_equals_bitsandbytes(shape_out_in, block):
    rng = np.random.default_rng(0)
    w_out_in = rng.normal(0.0, 0.02, shape_out_in).astype(np.float32)  # torch's [out, in]
    codes, state = F.quantize_4bit(torch.from_numpy(w_out_in), blocksize=block, quant_type="nf4")
    reference = F.dequantize_4bit(codes, state).numpy()
    ours = quantize_nf4(w_out_in.T, block, False)  # ours is [in, out]
    d_out, d_in = shape_out_in
    # bitsandbytes' blocks run along each output row: absmax [out * in / block].
    ref_absmax = state.absmax.numpy().reshape(d_out, d_in // block)
    np.testing.assert_array_equal(np.asarray(ours.scales).T, ref_absmax)
    np.testing.assert_array_equal(np.asarray(ours.dequantize()).T, reference)

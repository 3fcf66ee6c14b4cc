"""Generation and evaluation are data parallel: each device decodes only its rows, and the
completions do not depend on the mesh (8 fake CPU devices, in a subprocess).

Per-device FLOPs come from the compiled sampler's `cost_analysis()` (a training batch, 4
samples per prompt, and an evaluation batch, greedy); ids must be identical
to the 1-device run with the same key, log-probabilities within 1e-5. One evaluation batch
of configs/tiny.py (greedy and sampled, through `evaluation.runner`) must give the same
records on every mesh.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
from fake_devices import run_on_fake_devices

REPO = Path(__file__).resolve().parents[1]
MESHES = {"1x1": (1, 1), "8x1": (8, 1), "2x4": (2, 4)}

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import jax, numpy as np
    jax.config.update("jax_disable_most_optimizations", True)
    from tiny_rl import LORA, nonzero_lora, tiny_model
    from rlvr_jax.config import ExperimentConfig
    from rlvr_jax.config_builder import sibling_config
    from rlvr_jax.evaluation.runner import generate_records
    from rlvr_jax.parallel import MeshConfig, batch_sharding, make_mesh, place_params
    from rlvr_jax.policy import Policy
    from rlvr_jax.run_setup import setup_run
    from rlvr_jax.sampling import SamplingConfig, SpecialTokens, generate_padded
    from rlvr_jax.sampling.prompts import left_pad

    assert jax.device_count() == 8, jax.devices()
    meshes = json.loads(sys.argv[2])
    model, params = tiny_model()
    lora = nonzero_lora(params)
    rng = np.random.default_rng(0)
    prompts = [list(rng.integers(1, 41, size=n)) for n in rng.integers(2, 9, size=16)]
    cfg = SamplingConfig(num_samples=4, max_new_tokens=16, temperature=1.0, top_k=0,
                         top_p=1.0, extra_stop_token_ids=(), prompt_buckets=(8,))
    tokens = SpecialTokens(stop_token_ids=(3,), pad_token_id=0)
    greedy = SamplingConfig(num_samples=1, max_new_tokens=16, temperature=0.0, top_k=0,
                            top_p=1.0, extra_stop_token_ids=(), prompt_buckets=(8,))
    out, flops, records = {}, {}, {}
    for name, (data, fsdp) in meshes.items():
        devices = jax.devices()[:1] if name == "1x1" else jax.devices()
        mesh = make_mesh(MeshConfig(data=data, fsdp=fsdp), devices)
        policy = Policy.create(model, params, "lora", LORA, mesh, has_reference=False)
        trainable = place_params(lora, mesh)
        completions = policy.sample(trainable, prompts, jax.random.key(7), cfg, tokens)
        for field in ("ids", "logprobs", "sampling_logprobs", "lengths"):
            out[f"{name}/{field}"] = np.asarray(getattr(completions, field))
        rows = batch_sharding(mesh)
        ids, mask = (jax.device_put(x, rows) for x in left_pad(prompts, (8,), 0))
        for label, sampling in (("train", cfg), ("eval", greedy)):  # an evaluation batch
            compiled = generate_padded.lower(
                model, policy.live_variables(trainable), ids, mask, jax.random.key(7),
                sampling, tokens, rows
            ).compile()
            cost = compiled.cost_analysis()
            cost = cost[0] if isinstance(cost, (list, tuple)) else cost
            flops[f"{label}/{name}"] = float(cost["flops"])

        config = sibling_config(sys.argv[3], "tiny")
        config.mesh.data, config.mesh.fsdp = data, fsdp
        config.eval.batch_size, config.eval.num_samples, config.eval.ks = 8, 2, (1, 2)
        config.rl.prompts_per_step = 8
        run = setup_run(ExperimentConfig.from_config_dict(config), mesh)
        records[name] = generate_records(run, None, list(run.eval_rows)[:8], seed=0)
    np.savez(sys.argv[1], **out)
    with open(sys.argv[1] + ".json", "w") as f:
        json.dump({"flops": flops, "records": records}, f)
    print("OK")
    """
)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("mesh_sampler") / "results.npz"
    tiny = str(REPO / "configs" / "tiny.py")
    run_on_fake_devices(SCRIPT, str(out), json.dumps(MESHES), tiny, timeout=600)
    with np.load(out) as npz:
        arrays = dict(npz)
    return arrays, json.loads(Path(str(out) + ".json").read_text())


@pytest.mark.parametrize("batch", ["train", "eval"])
@pytest.mark.parametrize("mesh", ["8x1", "2x4"])
def test_each_device_decodes_only_its_rows(results, mesh, batch):
    flops = results[1]["flops"]
    assert flops[f"{batch}/{mesh}"] <= flops[f"{batch}/1x1"] / 6, flops


@pytest.mark.parametrize("mesh", ["8x1", "2x4"])
def test_completions_do_not_depend_on_the_mesh(results, mesh):
    arrays = results[0]
    np.testing.assert_array_equal(arrays[f"{mesh}/ids"], arrays["1x1/ids"])
    np.testing.assert_array_equal(arrays[f"{mesh}/lengths"], arrays["1x1/lengths"])
    for field in ("logprobs", "sampling_logprobs"):
        np.testing.assert_allclose(
            arrays[f"{mesh}/{field}"], arrays[f"1x1/{field}"], atol=1e-5, err_msg=field
        )
    assert len(set(arrays["1x1/lengths"].tolist())) > 1, "some rows must stop early"


@pytest.mark.parametrize("mesh", ["8x1", "2x4"])
def test_evaluation_batch_does_not_depend_on_the_mesh(results, mesh):
    records = results[1]["records"]
    assert len(records["1x1"]) == 8
    assert records[mesh] == records["1x1"]
    assert all(len(r["sampled"]["completions"]) == 2 for r in records["1x1"])

"""Mutants of exercise 3 (spatial dropout), written from the statement."""

from mutants.harness import Mutant

EXERCISE = "03_spatial_dropout"

MASK = "    mask = rng.random((n, c, 1, 1)) < keep  # one decision per feature map, broadcast over H, W\n"
OUT = "    out = x * mask * scale\n"
EVAL = "    if not training or rate == 0.0:\n"
RNG = "    rng = np.random.default_rng(rng)\n    keep = 1.0 - rate\n    mask"
SHAPE_CHECK = ('    if x.ndim != 4:\n        raise ValueError(f"x must have shape (N, C, H, W); '
               'received x with shape {x.shape}")\n')
RATE_CHECK = '    if not 0.0 <= rate <= 1.0:\n        raise ValueError(f"rate must be in [0, 1]; received rate={rate!r}")\n    n, c'
START = "    x = np.asarray(x)\n    if x.ndim != 4:"
BACK = '    return dout * np.asarray(cache["mask"], dtype=bool) * float(cache["scale"])\n'
FRACTION = "    return float(np.mean(np.all(out.reshape(out.shape[0], out.shape[1], -1) == 0, axis=2)))\n"
LAYERS = '    layers = {"channel": nn.Dropout2d, "element": nn.Dropout}\n'

MUTANTS = [
    Mutant("elementwise_mask", "one decision per pixel", ((MASK, "    mask = rng.random(x.shape) < keep\n"),)),
    Mutant("one_mask_per_channel", "every sample shares the channel mask",
           ((MASK, "    mask = rng.random((1, c, 1, 1)) < keep\n"),)),
    Mutant("one_mask_per_sample", "all channels of a sample dropped together",
           ((MASK, "    mask = rng.random((n, 1, 1, 1)) < keep\n"),)),
    Mutant("rows_of_pixels", "one decision per (sample, channel, row)",
           ((MASK, "    mask = rng.random((n, c, x.shape[2], 1)) < keep\n"),)),
    Mutant("keep_and_drop_swapped", "rate used as the keep probability",
           ((MASK, "    mask = rng.random((n, c, 1, 1)) < rate\n"),)),
    Mutant("no_rescaling", "kept maps not divided by keep", ((OUT, "    out = x * mask\n"),)),
    Mutant("neighbouring_channels_paired", "channels dropped in pairs",
           ((MASK, "    mask = np.repeat(rng.random((n, -(-c // 2), 1, 1)) < keep, 2, axis=1)[:, :c]\n"),),
           hidden_only=True),
    Mutant("seed_ignored", "always seed 0", ((RNG, RNG.replace("default_rng(rng)", "default_rng(0)")),)),
    Mutant("global_rng", "NumPy's global generator",
           ((MASK, "    mask = np.random.rand(n, c, 1, 1) < keep\n"),)),
    Mutant("drops_in_eval_mode", "training=False still drops", ((EVAL, "    if rate == 0.0:\n"),)),
    Mutant("rate_one_nan", "divides by keep = 0",
           (("    scale = 1.0 / keep if keep > 0.0 else 0.0\n",
             "    with np.errstate(divide='ignore'):\n        scale = np.float64(1.0) / keep\n"),)),
    Mutant("accepts_any_shape", "no check of the 4-D shape", ((SHAPE_CHECK, ""),)),
    Mutant("shape_error_says_nothing", "the ValueError does not report the shape",
           ((SHAPE_CHECK, '    if x.ndim != 4:\n        raise ValueError("bad input")\n'),)),
    Mutant("no_rate_check", "no ValueError for a rate outside [0, 1]",
           ((RATE_CHECK, "    n, c"),)),
    Mutant("float64_output", "float32 becomes float64",
           ((OUT, "    out = x * mask.astype(np.float64) * scale\n"),)),
    Mutant("float32_output", "float64 becomes float32",
           ((OUT, "    out = (x * mask * scale).astype(np.float32)\n"),)),
    Mutant("input_modified", "x multiplied in place",
           ((OUT, "    out = np.multiply(x, mask * scale, out=x)\n"),)),
    Mutant("do_nothing_forward", "returns x",
           ((START, '    return x, {"mask": np.ones((1, 1, 1, 1), dtype=bool), "scale": 1.0}\n' + START),),
           zero=("Q1",)),
    Mutant("always_raising_forward", "always raises ValueError",
           ((START, '    raise ValueError(f"x must have shape (N, C, H, W); received x with shape {np.shape(x)}")\n'
                    + START),), zero=("Q1", "Q2")),
    Mutant("uses_package_spatial_dropout", "calls dlcourse's spatial dropout (not blocked in-process)",
           ((START, "    from dlcourse.scratch.spatial import spatial_dropout_forward as ref\n"
                    "    x = np.asarray(x)\n"
                    "    if x.ndim != 4:\n"
                    "        raise ValueError(f'x must have shape (N, C, H, W); received x with shape {x.shape}')\n"
                    "    out, c = ref(x, rate, training=training, rng=rng)\n"
                    "    m = np.ones((x.shape[0], x.shape[1], 1, 1), bool) if c['mask'] is None else c['mask']\n"
                    "    return out, {'mask': m, 'scale': c['scale']}\n" + START),),
           zero=("Q1",), hidden_only=True),
    Mutant("uses_time_shared_dropout", "bends dlcourse's time-shared (variational) dropout into spatial",
           ((START, "    from dlcourse.scratch.recurrent import time_shared_dropout_forward as ref\n"
                    "    x = np.asarray(x)\n"
                    "    if x.ndim != 4:\n"
                    "        raise ValueError(f'x must have shape (N, C, H, W); received x with shape {x.shape}')\n"
                    "    n, ch, h, w = x.shape\n"
                    "    seq = x.reshape(n, ch, h * w).transpose(0, 2, 1)\n"
                    "    out, c = ref(seq, rate, training=training, rng=rng)\n"
                    "    m = np.ones((n, ch, 1, 1), bool) if c['mask'] is None else c['mask'].reshape(n, ch, 1, 1)\n"
                    "    return out.transpose(0, 2, 1).reshape(x.shape), {'mask': m, 'scale': c['scale']}\n"
                    + START),), zero=("Q1",), hidden_only=True),
    Mutant("backward_without_mask", "gradient everywhere", ((BACK, '    return dout * float(cache["scale"])\n'),)),
    Mutant("backward_mask_from_output", "mask read off out (wrong where x == 0)",
           ((OUT, "    out = x * mask * scale\n    mask = out != 0\n"),)),
    Mutant("backward_float64", "float32 dout gives float64 dx",
           ((BACK, '    return dout * np.asarray(cache["mask"], dtype=np.float64) * float(cache["scale"])\n'),)),
    Mutant("backward_in_place", "writes into dout",
           ((BACK, '    return np.multiply(dout, np.asarray(cache["mask"], dtype=bool) * float(cache["scale"]), out=dout)\n'),)),
    Mutant("fraction_of_zero_pixels", "counts zero entries instead of zero maps",
           ((FRACTION, "    return float(np.mean(out == 0))\n"),)),
    Mutant("fraction_any_zero", "a map with one zero pixel counts as dropped",
           ((FRACTION, "    return float(np.mean(np.any(out.reshape(out.shape[0], out.shape[1], -1) == 0, axis=2)))\n"),)),
    Mutant("kinds_swapped", "channel gives nn.Dropout",
           ((LAYERS, '    layers = {"channel": nn.Dropout, "element": nn.Dropout2d}\n'),)),
    Mutant("unknown_kind_defaults", "an unknown kind gives element-wise dropout",
           (("    drop = layers[kind]\n", "    drop = layers.get(kind, nn.Dropout)\n"),
            ("    if kind not in layers:\n", "    if False:\n"))),
    Mutant("no_dropout_in_cnn", "make_cnn forgets the dropout layers",
           (("    drop = layers[kind]\n", "    drop = lambda rate: nn.Identity()  # noqa: E731\n"),)),
    Mutant("trains_in_eval_mode", "the training loop runs in eval mode and never steps",
           (("            optimizer.step()\n", "            pass\n"),)),
    Mutant("concept_decisions_per_pixel", "counts every entry",
           (("q5_decisions = 32 * 16", "q5_decisions = 32 * 16 * 8 * 8"),), focus=("Q5",), hidden_only=True),
    Mutant("concept_whole_map_half", "takes the rate itself",
           (("q5_whole_map_probability = 0.5**4", "q5_whole_map_probability = 0.5"),), focus=("Q5",), hidden_only=True),
    Mutant("concept_faster", "thinks spatial dropout is about speed",
           (('q5_why_spatial = "b"', 'q5_why_spatial = "a"'),), focus=("Q5",),
           hidden_only=True),
]

GRADED_MUTANTS = [
    Mutant("graded_uses_spatial_dropout_1d", "dlcourse's SpatialDropout1D on (N, C, H*W)",
           ((START, "    from dlcourse.scratch import SpatialDropout1D\n"
                    "    x = np.asarray(x)\n"
                    "    if x.ndim != 4:\n"
                    "        raise ValueError(f'x must have shape (N, C, H, W); received x with shape {x.shape}')\n"
                    "    layer = SpatialDropout1D(rate, rng=rng)\n"
                    "    layer.training = training\n"
                    "    out = layer.forward(x.reshape(x.shape[0], x.shape[1], -1)).reshape(x.shape)\n"
                    "    m = np.ones((x.shape[0], x.shape[1], 1, 1), bool) if layer.cache['mask'] is None"
                    " else layer.cache['mask'].reshape(x.shape[0], x.shape[1], 1, 1)\n"
                    "    return out, {'mask': m, 'scale': layer.cache['scale']}\n" + START),),
           zero=("Q1",), hidden_only=True),
]

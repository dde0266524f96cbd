"""Mutants of exercise 1 (dropout from scratch), written from the statement."""

from mutants.harness import Mutant

EXERCISE = "01_dropout_from_scratch"

MASK = "    mask = rng.random(x.shape) < keep\n"
OUT = "    out = x * mask * scale\n"
EVAL = "    if not training or rate == 0.0:\n"
RNG = "    rng = np.random.default_rng(rng)\n"
BACK = '    dx = dout * np.asarray(cache["mask"], dtype=bool) * float(cache["scale"])\n'
CHECK = "    if not 0.0 <= rate <= 1.0:\n        raise ValueError(f\"rate must be in [0, 1]; received rate={rate!r}\")\n    if not training"
FORWARD_BODY_START = "    x = np.asarray(x)\n    if not np.issubdtype(x.dtype, np.floating):"

MUTANTS = [
    Mutant("keep_and_drop_swapped", "rate used as the keep probability",
           ((MASK, "    mask = rng.random(x.shape) < rate\n"),)),
    Mutant("no_inverted_scaling", "survivors not divided by keep", ((OUT, "    out = x * mask\n"),)),
    Mutant("scaled_by_keep", "survivors multiplied by keep instead of divided",
           ((OUT, "    out = x * mask * keep\n"),)),
    Mutant("one_mask_per_column", "one decision per feature, shared by every row",
           ((MASK, "    mask = rng.random(x.shape[-1:]) < keep\n"),)),
    Mutant("one_mask_per_row", "one decision per row",
           ((MASK, "    mask = rng.random(x.shape[:1] + (1,) * (x.ndim - 1)) < keep\n"),)),
    Mutant("correlated_neighbours", "pairs of neighbours share one decision",
           ((MASK, "    mask = np.repeat(rng.random(x.shape[:-1] + (-(-x.shape[-1] // 2),)) < keep, 2,"
                   " axis=-1)[..., : x.shape[-1]]\n"),),
           hidden_only=True),
    Mutant("exact_fraction_permutation", "drops exactly round(rate*n) entries (not independent)",
           ((MASK, "    mask = (rng.permutation(x.size) >= round(rate * x.size)).reshape(x.shape)\n"),)),
    Mutant("ignores_seed", "rng argument ignored (always seed 0)",
           ((RNG, "    rng = np.random.default_rng(0)\n"),)),
    Mutant("global_numpy_rng", "draws from NumPy's global generator",
           ((MASK, "    mask = np.random.rand(*x.shape) < keep\n"),)),
    Mutant("reseeds_generator", "a Generator is re-seeded instead of advanced",
           ((RNG, "    rng = np.random.default_rng(rng if not isinstance(rng, np.random.Generator)"
                  " else 1234)\n"),)),
    Mutant("drops_in_eval_mode", "training=False still drops", ((EVAL, "    if rate == 0.0:\n"),)),
    Mutant("scales_in_eval_mode", "training=False multiplies by keep",
           ((EVAL, "    if not training:\n        return x * (1.0 - rate), {\"mask\": np.ones(x.shape, dtype=bool), \"scale\": 1.0}\n    if rate == 0.0:\n"),)),
    Mutant("rate_one_divides_by_zero", "rate == 1 gives nan",
           (("    scale = 1.0 / keep if keep > 0.0 else 0.0  # rate == 1: everything is dropped anyway\n",
             "    with np.errstate(divide='ignore'):\n        scale = np.float64(1.0) / keep\n"),)),
    Mutant("no_rate_check", "no ValueError for a rate outside [0, 1]",
           ((CHECK, "    if not training"),)),
    Mutant("rate_check_without_value", "the ValueError does not say which rate",
           (('        raise ValueError(f"rate must be in [0, 1]; received rate={rate!r}")\n    if not training',
             '        raise ValueError("bad rate")\n    if not training'),)),
    Mutant("float32_becomes_float64", "float32 input gives float64 output",
           ((OUT, "    out = x * mask.astype(np.float64) * scale\n"),)),
    Mutant("everything_float32", "float64 input gives float32 output",
           ((OUT, "    out = (x * mask * scale).astype(np.float32)\n"),)),
    Mutant("dtype_liar", "returns float64 data in an ndarray subclass that claims float32",
           ((OUT, "    class Liar(np.ndarray):\n        dtype = property(lambda self: x.dtype)\n"
                  "    out = (x.astype(np.float64) * mask * scale).view(Liar)\n"),)),
    Mutant("input_modified_in_place", "x multiplied in place",
           ((OUT, "    out = np.multiply(x, mask * scale, out=x)\n"),)),
    Mutant("do_nothing_forward", "dropout_forward returns x and an empty cache",
           ((FORWARD_BODY_START, "    return x, {\"mask\": np.ones(np.shape(x), dtype=bool), \"scale\": 1.0}\n"
                                 "    x = np.asarray(x)\n    if not np.issubdtype(x.dtype, np.floating):"),),
           zero=("Q1",)),
    Mutant("always_raising_forward", "dropout_forward always raises ValueError",
           ((FORWARD_BODY_START, "    raise ValueError(f\"rate must be in [0, 1]; received rate={rate!r}\")\n"
                                 "    x = np.asarray(x)\n    if not np.issubdtype(x.dtype, np.floating):"),),
           zero=("Q1", "Q2", "Q3")),
    Mutant("delegates_to_reference", "calls dlcourse's dropout_forward (blocked by the grader; "
           "here it is not, so the reference's masks must be recognised)",
           ((FORWARD_BODY_START, "    from dlcourse.scratch.dropout import dropout_forward as ref\n"
                                 "    out, c = ref(x, rate, training=training, rng=rng)\n"
                                 "    m = np.ones(np.shape(x), bool) if c['mask'] is None else np.broadcast_to(c['mask'], np.shape(x))\n"
                                 "    return out, {'mask': m, 'scale': c['scale']}\n"
                                 "    x = np.asarray(x)\n    if not np.issubdtype(x.dtype, np.floating):"),),
           zero=("Q1",), hidden_only=True),
    Mutant("backward_without_mask", "backward scales every entry", ((BACK, '    dx = dout * float(cache["scale"])\n'),)),
    Mutant("backward_mask_from_output", "backward reads the mask off the output (wrong where x == 0)",
           ((OUT, "    out = x * mask * scale\n    mask = out != 0\n"),)),
    Mutant("backward_forgets_scale", "backward multiplies by the mask only",
           ((BACK, '    dx = dout * np.asarray(cache["mask"], dtype=bool)\n'),)),
    Mutant("backward_float64", "backward turns float32 into float64",
           ((BACK, '    dx = dout * np.asarray(cache["mask"], dtype=np.float64) * float(cache["scale"])\n'),)),
    Mutant("backward_in_place", "backward writes into dout",
           ((BACK, '    dx = np.multiply(dout, np.asarray(cache["mask"], dtype=bool) * float(cache["scale"]), out=dout)\n'),)),
    Mutant("layer_starts_in_eval", "a new layer has training == False",
           (("        self.training = True\n        self.cache = None\n",
             "        self.training = False\n        self.cache = None\n"),)),
    Mutant("layer_eval_does_nothing", "eval() leaves the layer in training mode",
           (("        self.training = False\n        return self\n", "        return self\n"),)),
    Mutant("layer_reseeds_each_pass", "forward re-seeds: every pass draws the same mask",
           (("training=self.training, rng=self.rng)", "training=self.training, rng=0)"),)),
    Mutant("layer_ignores_seed", "the layer's generator ignores rng",
           (("        self.rng = np.random.default_rng(rng)\n", "        self.rng = np.random.default_rng()\n"),)),
    Mutant("layer_backward_fresh_mask", "backward uses a new forward pass's mask",
           (("        return dropout_backward(dout, self.cache)\n",
             "        _, cache = dropout_forward(dout, self.rate, training=self.training, rng=self.rng)\n"
             "        return dropout_backward(dout, cache)\n"),)),
    Mutant("one_sided_difference", "numerical_gradient uses (f(x+h) - f(x)) / h",
           (("        x[idx] = saved - h\n        minus = float(f(x))\n",
             "        x[idx] = saved\n        minus = float(f(x))\n"),
            ("        grad[idx] = (plus - minus) / (2.0 * h)\n", "        grad[idx] = (plus - minus) / h\n"))),
    Mutant("numerical_gradient_modifies_x", "numerical_gradient perturbs the caller's x",
           (("    x = np.array(x, dtype=np.float64)  # a copy: the caller's x is never touched\n",
             "    x = np.asarray(x)\n"),
            ("        x[idx] = saved\n        grad[idx]", "        grad[idx]"))),
    Mutant("numerical_gradient_first_row_only", "only the first axis is differentiated",
           (("    for idx in np.ndindex(x.shape):\n", "    for idx in [(i,) + (0,) * (x.ndim - 1) for i in range(len(x))]:\n"),)),
    Mutant("concept_naive_no_scaling", "naive dropout at test time: forgot the keep factor",
           (("q5_naive_test_output = 2.4", "q5_naive_test_output = 3.0"),), hidden_only=True),
    Mutant("concept_keep_fraction", "zero-gradient fraction given as keep",
           (("q5_zero_gradient_fraction = 0.25", "q5_zero_gradient_fraction = 0.75"),),
           hidden_only=True),
    Mutant("concept_inverted_scales_at_inference", "inverted dropout scaled at inference",
           (('q5_inverted_inference = "c"', 'q5_inverted_inference = "a"'),),
           hidden_only=True),
]

def _delegation(name: str, body: str) -> Mutant:
    return Mutant(name, "dropout_forward hands the work to dlcourse's reference",
                  ((FORWARD_BODY_START,
                    "    from dlcourse.scratch import Dropout as ReferenceDropout\n"
                    "    from dlcourse.scratch import dropout_forward as reference\n"
                    f"    {body}\n"
                    "    x = np.asarray(x)\n    if not np.issubdtype(x.dtype, np.floating):"),),
                  zero=("Q1", "Q2", "Q3"), hidden_only=True)


#: Graded with ``dlcourse grade`` (the real sandboxed path, where the grader blocks the
#: reference): delegation by a plain call, through ``__wrapped__``, through the reference
#: class, and through the blocked stand-in's ``__closure__``.
GRADED_MUTANTS = [
    _delegation("calls_reference", "return reference(x, rate, training=training, rng=rng)"),
    _delegation("calls_wrapped_reference",
                "return getattr(reference, '__wrapped__', reference)(x, rate, training=training, rng=rng)"),
    _delegation("calls_reference_class",
                "layer = [c for c in ReferenceDropout.__mro__ if c.__name__ == 'Dropout'][-1](rate, rng=rng)\n"
                "    layer.training = training\n"
                "    return layer.forward(x), layer.cache"),
    Mutant("delegates_through_closure", "fishes the reference out of the blocked stand-in's "
           "__closure__ (or __wrapped__) and calls it",
           ((FORWARD_BODY_START,
             "    import dlcourse.scratch as _s\n"
             "    ref = _s.dropout_forward\n"
             "    while True:\n"
             "        cells = [c.cell_contents for c in (getattr(ref, '__closure__', None) or ())]\n"
             "        inner = [c for c in cells if callable(c) and getattr(c, '__name__', '') == 'dropout_forward']\n"
             "        if not inner:\n"
             "            break\n"
             "        ref = inner[0]\n"
             "    ref = getattr(ref, '__wrapped__', ref)\n"
             "    out, c = ref(x, rate, training=training, rng=rng)\n"
             "    m = np.ones(np.shape(x), bool) if c['mask'] is None else np.broadcast_to(c['mask'], np.shape(x))\n"
             "    return out, {'mask': m, 'scale': c['scale']}\n"
             "    x = np.asarray(x)\n    if not np.issubdtype(x.dtype, np.floating):"),),
           zero=("Q1", "Q2", "Q3"), hidden_only=True),
]

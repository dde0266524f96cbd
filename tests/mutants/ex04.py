"""Mutants of exercise 4 (Monte-Carlo dropout), written from the statement."""

from mutants.harness import Mutant

EXERCISE = "04_mc_dropout"

SEED = "    torch.manual_seed(seed)\n    modes = "
SWITCH = ("        model.eval()\n        for module in model.modules():\n"
          "            if isinstance(module, nn.Dropout):\n                module.train()\n")
PASSES = "            probs = torch.stack([torch.softmax(model(inputs), dim=1) for _ in range(T)])\n"
RESTORE = "        for module, training in modes.items():\n            module.train(training)\n"
MC_START = "    torch.manual_seed(seed)\n    modes = {module"
SUMMARY_START = "    probs = np.asarray(probs, dtype=np.float64)\n    mean = probs.mean(axis=0)\n"
ENTROPY = "    entropy = -np.sum(mean * np.log(safe), axis=1)\n"
PER_PASS = "    per_pass = -np.sum(probs * np.log(np.where(probs > 0, probs, 1.0)), axis=2)  # (T, N)\n"
MI = "    mutual_information = entropy - per_pass.mean(axis=0)\n"
NOISE = "        return np.random.default_rng(seed).random(x.shape).astype(x.dtype)\n"
INVERTED = "        return (1.0 - x).astype(x.dtype)\n"
TABLE_T = "    name: float(predictive_summary(mc_predict(model, inputs, T=50, seed=0))[\"entropy\"].mean())\n"

MUTANTS = [
    Mutant("whole_model_in_train_mode", "model.train() instead of only the dropout modules",
           ((SWITCH, "        model.train()\n"),)),
    Mutant("dropout_left_off", "the passes run in eval mode", ((SWITCH, "        model.eval()\n"),)),
    Mutant("unseeded", "torch.manual_seed(seed) missing", ((SEED, "    modes = "),)),
    Mutant("seed_ignored", "always torch.manual_seed(0)",
           ((SEED, "    torch.manual_seed(0)\n    modes = "),)),
    Mutant("logits_not_probabilities", "returns logits",
           ((PASSES, "            probs = torch.stack([model(inputs) for _ in range(T)])\n"),)),
    Mutant("softmax_over_the_batch", "softmax over dim 0",
           ((PASSES, "            probs = torch.stack([torch.softmax(model(inputs), dim=0) for _ in range(T)])\n"),)),
    Mutant("same_mask_every_pass", "re-seeds before every pass",
           ((PASSES, "            probs = torch.stack([(torch.manual_seed(seed), torch.softmax(model(inputs), dim=1))[1]"
                     " for _ in range(T)])\n"),)),
    Mutant("modes_not_restored", "dropout modules left in train mode", ((RESTORE, "        pass\n"),)),
    Mutant("always_eval_afterwards", "the model is put in eval mode instead of its own mode",
           ((RESTORE, "        model.eval()\n"),)),
    Mutant("returns_the_mean", "returns the average pass (N, C)",
           (("    return probs.numpy()\n", "    return probs.mean(dim=0).numpy()\n"),)),
    Mutant("t_ignored", "always 50 passes",
           ((PASSES, "            probs = torch.stack([torch.softmax(model(inputs), dim=1) for _ in range(50)])\n"),)),
    Mutant("do_nothing_mc_predict", "uniform probabilities, no model",
           ((MC_START, "    return np.full((T, len(x), 10), 0.1)\n" + MC_START),), zero=("Q1", "Q4")),
    Mutant("always_raising_mc_predict", "raises",
           ((MC_START, "    raise RuntimeError('not today')\n" + MC_START),), zero=("Q1", "Q4")),
    Mutant("mean_over_inputs", "averages over axis 1", ((
        "    mean = probs.mean(axis=0)\n    safe", "    mean = probs.mean(axis=1).mean(axis=0, keepdims=True) + 0 * probs.mean(axis=0)\n    safe"),)),
    Mutant("std_ddof_one", "standard deviation with ddof=1",
           (('"std": probs.std(axis=0)', '"std": probs.std(axis=0, ddof=1)'),)),
    Mutant("entropy_in_bits", "log2", ((ENTROPY, "    entropy = -np.sum(mean * np.log2(safe), axis=1)\n"),)),
    Mutant("expected_entropy_instead", "mean of the per-pass entropies",
           ((ENTROPY, "    entropy = -np.sum(probs * np.log(np.where(probs > 0, probs, 1.0)), axis=2).mean(axis=0)\n"),)),
    Mutant("entropy_nan_at_zero", "np.log(mean) without 0 log 0 = 0",
           ((ENTROPY, "    with np.errstate(divide='ignore', invalid='ignore'):\n"
                      "        entropy = -np.sum(mean * np.log(mean), axis=1)\n"),)),
    Mutant("mutual_information_missing", "no mutual_information key",
           (('            "mutual_information": mutual_information}', "            }"),)),
    Mutant("mutual_information_sign", "mean entropy minus entropy of the mean",
           ((MI, "    mutual_information = per_pass.mean(axis=0) - entropy\n"),)),
    Mutant("mutual_information_is_entropy", "forgot the mean per-pass entropy",
           ((MI, "    mutual_information = entropy\n"),)),
    Mutant("mutual_information_nan_at_zero", "per-pass entropies without 0 log 0 = 0",
           ((PER_PASS, "    with np.errstate(divide='ignore', invalid='ignore'):\n"
                       "        per_pass = -np.sum(probs * np.log(probs), axis=2)\n"),)),
    Mutant("do_nothing_summary", "zeros of the right shapes",
           ((SUMMARY_START, "    probs = np.asarray(probs, dtype=np.float64)\n"
                            "    n, c = probs.shape[1:]\n"
                            "    return {'mean': np.zeros((n, c)), 'std': np.zeros((n, c)), 'entropy': np.zeros(n),"
                            " 'mutual_information': np.zeros(n)}\n"
                            "    mean = probs.mean(axis=0)\n"),), zero=("Q2",)),
    Mutant("noise_unseeded", "noise ignores the seed",
           ((NOISE, "        return np.random.default_rng().random(x.shape).astype(x.dtype)\n"),)),
    Mutant("noise_float64", "noise in float64",
           ((NOISE, "        return np.random.default_rng(seed).random(x.shape)\n"),)),
    Mutant("noise_gaussian", "normal noise clipped to [0, 1)",
           ((NOISE, "        return np.clip(np.random.default_rng(seed).normal(0.5, 0.15, x.shape), 0, 0.999)"
                    ".astype(x.dtype)\n"),)),
    Mutant("inverted_is_identity", "inverted returns x", ((INVERTED, "        return x.copy()\n"),)),
    Mutant("unknown_kind_accepted", "no ValueError for an unknown kind",
           (('    raise ValueError(f"kind must be \'noise\' or \'inverted\'; received kind={kind!r}")\n',
             "    return x\n"),)),
    Mutant("table_with_ten_passes", "the table uses T=10",
           ((TABLE_T, TABLE_T.replace("T=50", "T=10")),)),
    Mutant("table_names_swapped", "noise and inverted swapped",
           (('        ("noise", make_ood(digits.x_test, "noise")),\n        ("inverted", make_ood(digits.x_test, "inverted")),\n',
             '        ("noise", make_ood(digits.x_test, "inverted")),\n        ("inverted", make_ood(digits.x_test, "noise")),\n'),)),
    Mutant("concept_entropy_in_bits", "log2(10)",
           (("q5_max_entropy = float(np.log(10))", "q5_max_entropy = float(np.log2(10))"),), focus=("Q5",), hidden_only=True),
    Mutant("concept_mutual_information_zero", "MI of disagreeing passes taken as 0",
           (("q5_two_pass_mutual_information = float(np.log(2))", "q5_two_pass_mutual_information = 0.0"),),
           focus=("Q5",), hidden_only=True),
    Mutant("concept_every_module", "every module in train mode",
           (('q5_train_mode_layers = "b"', 'q5_train_mode_layers = "a"'),), focus=("Q5",),
           hidden_only=True),
]

GRADED_MUTANTS = [
    Mutant("delegates_mc_predict", "calls dlcourse.torch.mc_predict",
           ((MC_START, "    from dlcourse.torch import mc_predict as reference\n"
                       "    return reference(model, torch.as_tensor(np.asarray(x, dtype=np.float32)), T, seed=seed).samples\n"
                       + MC_START),), zero=("Q1",), hidden_only=True),
    Mutant("delegates_summary", "calls dlcourse.uncertainty.summarize",
           ((SUMMARY_START, "    from dlcourse.uncertainty import summarize\n"
                            "    s = summarize(np.asarray(probs, dtype=np.float64))\n"
                            "    return {'mean': s.mean, 'std': s.std, 'entropy': s.entropy,"
                            " 'mutual_information': s.mutual_information}\n" + SUMMARY_START),),
           zero=("Q2",), hidden_only=True),
]

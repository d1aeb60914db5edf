"""The compiled training step against the eager one, from the same seed."""

import numpy as np
import pytest
import torch

from notmiwae.inference.training import TrainConfig, fit
from notmiwae.models import config_from_name
from tests.conftest import toy_data, toy_program


def params(program):
    return torch.cat([p.detach().flatten() for p in program.parameters()])


@pytest.mark.parametrize("name, replicas", [("notmiwae:selfmasking_known", 1),
                                            ("masked-notmiwae:linear", 2)])
def test_compiled_step_takes_the_eager_steps(name, replicas, capsys):
    """Same seed, 50 steps: the same bounds and parameters up to float32 rounding
    (tolerance 1e-5: the compiled graph fuses and reorders the same arithmetic). The
    compiled step really runs: it does not fall back to eager steps (with 2 replicas,
    batch x K = 40 rows make the heads' and the latent layers' products narrow, so they
    are rewritten)."""
    x, mask, _ = toy_data(n=40, d=4, dtype=torch.float32)
    config = config_from_name(name, 4, hidden=16)
    settings = dict(iterations=50, batch_size=8, num_particles=5, seed=3)
    eager = fit(config, x, mask, TrainConfig(**settings), progress=False, replicas=replicas)
    compiled = fit(config, x, mask, TrainConfig(compile=True, **settings), progress=False,
                   replicas=replicas)
    assert compiled.compile_seconds > 0
    assert "compiled training step unavailable" not in capsys.readouterr().err
    np.testing.assert_allclose(compiled.history, eager.history, rtol=0, atol=1e-5)
    torch.testing.assert_close(params(compiled.program), params(eager.program), rtol=0,
                               atol=1e-5)


def test_compile_setting_is_checked():
    with pytest.raises(ValueError, match="compile must be true, false or 'auto'"):
        TrainConfig(compile="yes")
    assert not TrainConfig(iterations=4_999).compiles()  # "auto": from 5,000 iterations
    assert TrainConfig(iterations=5_000).compiles()
    assert not TrainConfig(iterations=5_000, objective="renyi").compiles()
    assert TrainConfig(iterations=10, compile=True).compiles()
    assert not TrainConfig(iterations=10**6, compile=False).compiles()
    with pytest.raises(ValueError, match="compiles the 'iw' objective only"):
        TrainConfig(compile=True, objective="renyi")


def test_a_step_that_cannot_be_captured_trains_eagerly_and_says_so(monkeypatch, capsys):
    """Capture fails (as for a part the tracer cannot follow): one line, then eager steps
    from the same draws, ending exactly where an eager run with the same seed ends."""
    import notmiwae.inference.compiled as compiled

    def refuse(*args, **kwargs):
        raise RuntimeError("data-dependent control flow")

    monkeypatch.setattr(compiled, "make_fx", refuse)
    x, mask, _ = toy_data(n=20, d=3, dtype=torch.float32)
    config = config_from_name("notmiwae:selfmasking", 3, hidden=8)
    result = fit(config, x, mask, TrainConfig(iterations=5, batch_size=4, num_particles=3,
                                              compile=True), progress=False)
    err = capsys.readouterr().err
    assert err.count("compiled training step unavailable") == 1
    assert "data-dependent control flow" in err and "training eagerly" in err
    eager = fit(config, x, mask, TrainConfig(iterations=5, batch_size=4, num_particles=3,
                                             compile=False), progress=False)
    # the failed capture's draws are put back: the fallback is the eager run
    np.testing.assert_array_equal(result.history, eager.history)
    for a, b in zip(result.program.parameters(), eager.program.parameters(), strict=True):
        assert torch.equal(a, b)


def test_narrow_products_are_computed_transposed_with_the_same_values():
    """Batched C = A B with few output columns (N < 32, M >= 4N) becomes (B^T A^T)^T;
    wide outputs, too few rows and unbatched products are left alone; same values."""
    from torch.fx.experimental.proxy_tensor import make_fx

    from notmiwae.inference.compiled import narrow_products_transposed

    aten = torch.ops.aten

    def products(a, w_narrow, bias, batch_a, batch_narrow, batch_wide, batch_short):
        return (torch.addmm(bias, a, w_narrow),  # one run's (320, 11): kept
                a @ w_narrow,  # kept
                torch.bmm(batch_a, batch_narrow),  # (3, 320, 10): rewritten
                torch.bmm(batch_a, batch_wide),  # (3, 320, 128): wide, kept
                torch.bmm(batch_short, batch_narrow))  # (3, 39, 10): 39 < 4 x 10, kept

    def counts(graph):
        targets = [n.target for n in graph.graph.nodes if n.op == "call_function"]
        return {t: targets.count(t) for t in (aten.addmm.default, aten.mm.default,
                                              aten.bmm.default, aten.transpose.int,
                                              aten.clone.default)}

    g = torch.Generator().manual_seed(0)
    inputs = [torch.randn(*shape, generator=g) for shape in
              [(320, 128), (128, 11), (11,), (3, 320, 64), (3, 64, 10), (3, 64, 128),
               (3, 39, 64)]]
    graph = make_fx(products)(*inputs)
    expected = graph(*inputs)
    before = counts(graph)
    assert narrow_products_transposed(graph) == 1
    after = counts(graph)
    for target in (aten.addmm.default, aten.mm.default, aten.bmm.default):
        assert after[target] == before[target]
    assert after[aten.transpose.int] == before[aten.transpose.int] + 3
    assert after[aten.clone.default] == before[aten.clone.default] + 1
    assert narrow_products_transposed(graph) == 0  # its own nodes are left alone
    for got, want in zip(graph(*inputs), expected, strict=True):
        assert got.shape == want.shape and got.is_contiguous()
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("transpose_narrow, calls", [(True, 1), (False, 0)])
def test_the_narrow_product_rewrite_runs_on_the_cpu_unless_left_out(
        monkeypatch, transpose_narrow, calls):
    import pyro

    import notmiwae.inference.compiled as compiled
    from notmiwae.inference.noise import generators
    from notmiwae.inference.training import _iw_step, init_program, make_optimizer

    seen = []
    monkeypatch.setattr(compiled, "narrow_products_transposed", seen.append)
    monkeypatch.setattr(compiled, "inductor_compiled",
                        lambda traced, inputs: traced)  # no compiling
    x, mask, _ = toy_data(n=8, d=3, dtype=torch.float32)
    config = config_from_name("notmiwae:selfmasking", 3, hidden=8)
    program = init_program(config, [0], torch.device("cpu"))
    optimizer, noise = make_optimizer(program, 1e-3), generators([0])
    train = TrainConfig(batch_size=8, num_particles=3)
    step = compiled.CompiledStep(program, 3, noise, optimizer,
                                 _iw_step(program, train, noise, optimizer),
                                 transpose_narrow=transpose_narrow)
    with pyro.validation_enabled(False):  # as training runs it: no checks on traced values
        bound = step(x[None], mask[None])
    assert not step.failed and np.isfinite(bound).all()
    assert len(seen) == calls


def test_the_compiled_step_runs_where_rewritten_products_are_viewed_again(capsys):
    """Batch 16 x K = 20 particles, 3 latent dimensions, 2 replicas: the graph views
    the narrow products' outputs as (R, K, B, 3) again, which needs them row-major
    (they were once left transposed, and every such step fell back to eager)."""
    x, mask, _ = toy_data(n=40, d=4, dtype=torch.float32)
    config = config_from_name("notmiwae:selfmasking_known", 4, hidden=8)
    fit(config, x, mask, TrainConfig(iterations=3, batch_size=16, num_particles=20,
                                     compile=True), progress=False, replicas=2)
    assert "compiled training step unavailable" not in capsys.readouterr().err


def compiled_graphs(program) -> int:
    """How many compiled graphs of imputation weights the program keeps (failed ones,
    kept as None, not counted)."""
    from notmiwae.inference.compiled_imputation import _KEPT
    return sum(key[0] == "graph" and graph is not None
               for key, graph in _KEPT.get(program, {}).items())


@pytest.mark.parametrize("config", [
    dict(missing="selfmasking_known"),
    dict(missing="linear", latent_mask=True, target=True)])
def test_compiled_imputation_takes_the_eager_draws(config, capsys):
    """impute (both estimators), multiple_impute and effective_sample_size with compiled
    weights, from the same seed: the eager results up to float64 rounding, with 21 rows in
    blocks of 8 and L = 100 in chunks of 40, so the last block (5 rows, in the graph of
    8) and chunk (20 samples, in the graph of 32) run padded. y, when the program has a
    target, is padded too. Each weighting is compiled once per block size and kept with
    the program; the random generator ends where the eager run leaves it."""
    from notmiwae.inference.imputation import effective_sample_size, impute, multiple_impute
    from notmiwae.models import ModelConfig, build_model

    x, mask, _ = toy_data(n=21, d=4)
    torch.manual_seed(1)
    program = build_model(ModelConfig(n_features=4, hidden=8, **config)).double()
    y = torch.randn(21, dtype=torch.float64) if config.get("target") else None
    blocks = dict(num_samples=100, row_batch=8, sample_chunk=40, seed=5)
    runs = [(impute, dict(y=y)), (impute, dict(estimator="sample")),
            (multiple_impute, dict(m=3, return_ess=True)), (effective_sample_size, dict(y=y))]
    for run, kwargs in runs:
        eager = run(program, x, mask, **blocks, **kwargs)
        after_eager = torch.rand(3)
        compiled = run(program, x, mask, **blocks, **kwargs, compile=True)
        torch.testing.assert_close(torch.rand(3), after_eager)
        torch.testing.assert_close(compiled, eager, rtol=1e-9, atol=1e-9)
    assert "unavailable" not in capsys.readouterr().err
    # graphs, each for chunks of 40 and of 32: the mean (with y when given) and the
    # sample weighting, and the bare weights
    assert compiled_graphs(program) == 6
    impute(program, x, mask, **blocks, compile=True)  # the blocks' graphs are kept:
    assert compiled_graphs(program) == 6 + 2 * (y is not None)  # only y absent is new


def test_a_compiled_ensemble_takes_the_eager_draws(capsys):
    """Two programs, pooled and equal, single and multiple imputation, with padded
    blocks: the same results compiled as eager, each program with its own graphs (its
    parameters fed in). Input in column-major layout (as a DataFrame gives it) is
    accepted: the graphs are fed contiguous blocks."""
    from notmiwae.inference.imputation import impute, multiple_impute

    x, mask, _ = toy_data(n=13, d=4)
    x, mask = x.T.contiguous().T, mask.T.contiguous().T
    programs = [toy_program("selfmasking", d=4, hidden=8, seed=s) for s in (0, 1)]
    blocks = dict(num_samples=60, seed=2, row_batch=8, sample_chunk=25)
    for ensemble in ("pooled", "equal"):
        for run, kwargs in ((impute, {}), (multiple_impute, dict(m=4))):
            eager = run(programs, x, mask, ensemble=ensemble, **blocks, **kwargs)
            compiled = run(programs, x, mask, ensemble=ensemble, compile=True, **blocks,
                           **kwargs)
            torch.testing.assert_close(compiled, eager, rtol=1e-9, atol=1e-9)
    assert "unavailable" not in capsys.readouterr().err
    # per program: rows 8 x samples 25 and 8 x 16, for the mean and the sample
    assert [compiled_graphs(p) for p in programs] == [4, 4]


def test_compiled_imputation_follows_the_programs_dtype():
    """A program compiled in float64, then moved to float32, gets a float32 graph."""
    from notmiwae.inference.imputation import impute

    x, mask, _ = toy_data(n=8, d=4)
    program = toy_program("selfmasking", d=4, hidden=8)
    impute(program, x, mask, 20, seed=1, compile=True)
    program.float()
    eager = impute(program, x.float(), mask, 20, seed=1)
    compiled = impute(program, x.float(), mask, 20, seed=1, compile=True)
    torch.testing.assert_close(compiled, eager, rtol=1e-5, atol=1e-5)
    assert compiled.dtype == torch.float32 and compiled_graphs(program) == 2


def test_a_program_with_latent_sites_other_than_normal_imputes_eagerly(capsys):
    """A Student-t decoder draws x^m with its own rsample, which a compiled graph would
    draw from its own generator: said once, then the eager imputation exactly."""
    from notmiwae.inference.imputation import impute

    x, mask, _ = toy_data(n=10, d=4)
    program = toy_program("selfmasking", decoder="studentt", d=4, hidden=8)
    eager = impute(program, x, mask, 30, seed=1)
    result = impute(program, x, mask, 30, seed=1, compile=True)
    err = capsys.readouterr().err
    assert err.count("compiled imputation unavailable") == 1
    assert "latent sites ['x_unobserved'] are not Normal" in err
    torch.testing.assert_close(result, eager, rtol=0, atol=0)


def test_imputation_that_cannot_be_compiled_runs_eagerly_and_says_so(monkeypatch, capsys):
    import notmiwae.inference.compiled_imputation as compiled
    from notmiwae.inference.imputation import impute

    def refuse(*args, **kwargs):
        raise RuntimeError("an operation the compiler lacks")

    monkeypatch.setattr(compiled, "make_fx", refuse)
    x, mask, _ = toy_data(n=10, d=4)
    program = toy_program("selfmasking", d=4, hidden=8)
    eager = impute(program, x, mask, 30, seed=1, row_batch=5)
    result = impute(program, x, mask, 30, seed=1, row_batch=5, compile=True)
    impute(program, x, mask, 30, seed=1, row_batch=5, compile=True)  # not tried again
    err = capsys.readouterr().err
    assert err.count("compiled imputation unavailable") == 1  # once per program and block
    assert "an operation the compiler lacks" in err and "imputing eagerly" in err
    torch.testing.assert_close(result, eager, rtol=0, atol=0)
    with pytest.raises(ValueError, match="compile must be True, False or 'auto', got 'yes'"):
        impute(program, x, mask, 30, compile="yes")


def test_the_imputer_compiles_imputation_as_its_setting_says(monkeypatch):
    """compile=True compiles every imputation, False none, "auto" (resolved by
    ``impute``) from COMPILE_IMPUTATION_FROM row-samples (rows x L x replicas) on:
    counted by the graphs each replica keeps."""
    import notmiwae.inference.settings as settings
    from notmiwae import NotMIWAEImputer

    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3))
    X[rng.random(X.shape) < 0.3] = np.nan
    imputer = NotMIWAEImputer(iterations=2, num_samples=10, hidden=4, replicas=2,
                              compile="auto", verbose=False).fit(X)
    monkeypatch.setattr(settings, "COMPILE_IMPUTATION_FROM", 30 * 10 * 2)

    def graphs():
        return [compiled_graphs(p) for p in imputer.programs_]

    imputer.transform(X[1:])  # one row-sample too few: eager
    assert graphs() == [0, 0]
    imputer.transform(X)
    assert graphs() == [1, 1]
    imputer.set_params(compile=False).transform(X[:2])
    assert graphs() == [1, 1]
    imputer.set_params(compile=True).sample(X[:2], m=2)
    assert graphs() == [2, 2]  # the sample weighting, for blocks of 2 rows


def test_imputation_compiles_from_twenty_million_row_samples():
    from notmiwae.inference.settings import imputation_compiles

    assert not imputation_compiles("auto", 19_999_999)
    assert imputation_compiles("auto", 20_000_000)
    assert imputation_compiles(True, 1) and not imputation_compiles(False, 10**9)

"""The compiled training step against the eager one, from the same seed."""

import numpy as np
import pytest
import torch

from notmiwae.inference.training import TrainConfig, fit
from notmiwae.models import config_from_name
from tests.conftest import toy_data


def params(program):
    return torch.cat([p.detach().flatten() for p in program.parameters()])


@pytest.mark.parametrize("name, replicas", [("notmiwae:selfmasking_known", 1),
                                            ("masked-notmiwae:linear", 2)])
def test_compiled_step_takes_the_eager_steps(name, replicas):
    """Same seed, 50 steps: the same bounds and parameters up to float32 rounding
    (tolerance 1e-5: the compiled graph fuses and reorders the same arithmetic)."""
    x, mask, _ = toy_data(n=40, d=4, dtype=torch.float32)
    config = config_from_name(name, 4, hidden=16)
    settings = dict(iterations=50, batch_size=8, num_particles=5, seed=3)
    eager = fit(config, x, mask, TrainConfig(**settings), progress=False, replicas=replicas)
    compiled = fit(config, x, mask, TrainConfig(compile=True, **settings), progress=False,
                   replicas=replicas)
    assert compiled.compile_seconds > 0
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

"""PSI: zero for the same distribution, large for a shifted one, symmetric-ish, clear errors."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.drift import PSI_SHIFT, PSI_STABLE, psi, psi_table


def test_same_distribution_is_stable_and_a_shift_is_large():
    rng = np.random.default_rng(0)
    base = rng.lognormal(3, 1, 5000)
    assert psi(base, base) == pytest.approx(0.0, abs=1e-12)
    assert psi(base, rng.lognormal(3, 1, 5000)) < PSI_STABLE
    assert psi(base, rng.lognormal(4, 1, 5000)) > PSI_SHIFT
    assert psi(base, rng.lognormal(3.2, 1, 5000)) < psi(base, rng.lognormal(3.6, 1, 5000))


def test_known_value_and_edge_cases():
    # two bins split at the median: shares 0.5/0.5 against 0.9/0.1
    expected = np.r_[np.zeros(50), np.ones(50)]
    actual = np.r_[np.zeros(90), np.ones(10)]
    want = (0.9 - 0.5) * np.log(0.9 / 0.5) + (0.1 - 0.5) * np.log(0.1 / 0.5)
    assert psi(expected, actual, bins=2) == pytest.approx(want)
    assert np.isfinite(psi(np.zeros(10), np.ones(10)))  # constant reference: one bin, eps floor
    with pytest.raises(ValueError, match="values in both"):
        psi(np.array([np.nan]), np.ones(3))
    with pytest.raises(ValueError, match="at least 2 bins"):
        psi(np.ones(3), np.ones(3), bins=1)


def test_psi_table_per_column():
    rng = np.random.default_rng(1)
    e = pd.DataFrame({"level": rng.normal(0, 1, 500), "mix": rng.uniform(0, 1, 500), "empty": np.nan})
    a = pd.DataFrame({"level": rng.normal(2, 1, 500), "mix": rng.uniform(0, 1, 500), "empty": np.nan})
    t = psi_table(e, a, ["level", "mix", "empty"]).set_index("feature")
    assert list(t.index) == ["level", "mix"]
    assert t.loc["level", "psi"] > PSI_SHIFT > PSI_STABLE > t.loc["mix", "psi"]

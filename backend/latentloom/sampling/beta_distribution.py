"""The beta distribution's quantile function, without scipy.

The "beta" schedule (Lee et al. 2024, "Beta Sampling is All You Need") places timesteps at
quantiles of Beta(0.6, 0.6). scipy is only a development dependency, so the quantile is found
by bisection on the regularized incomplete beta function, which is evaluated with its classic
continued fraction (modified Lentz). Everything is float64 Python arithmetic: the schedule
needs at most a few hundred quantiles, so speed is irrelevant and exactness is cheap.
"""

from __future__ import annotations

import math

_TINY = 1e-300
_CONVERGED = 1e-15
_MAX_TERMS = 500
_BISECTION_STEPS = 100  # halves [0, 1] well past float64 resolution


def _continued_fraction(x: float, a: float, b: float) -> float:
    """I_x(a, b)'s continued fraction without its prefactor; converges for x < (a+1)/(a+b+2)."""
    f, c, d = 1.0, 1.0, 0.0
    for i in range(_MAX_TERMS):
        m = i // 2
        if i == 0:
            numerator = 1.0
        elif i % 2 == 0:
            numerator = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
        else:
            numerator = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
        d = 1.0 + numerator * d
        d = 1.0 / (d if abs(d) > _TINY else _TINY)
        c = 1.0 + numerator / c
        c = c if abs(c) > _TINY else _TINY
        f *= c * d
        if abs(1.0 - c * d) < _CONVERGED:
            return f - 1.0
    raise ArithmeticError(f"incomplete beta did not converge for x={x}, a={a}, b={b}")


def regularized_incomplete_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b), the CDF of Beta(a, b) at x."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    # The fraction converges fast only on the left of the mean; use the symmetry
    # I_x(a, b) = 1 - I_{1-x}(b, a) on the right.
    if x > (a + 1) / (a + b + 2):
        return 1.0 - regularized_incomplete_beta(1.0 - x, b, a)
    log_beta = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    front = math.exp(a * math.log(x) + b * math.log1p(-x) - log_beta) / a
    return front * _continued_fraction(x, a, b)


def beta_ppf(q: float, a: float, b: float) -> float:
    """The q-quantile of Beta(a, b): the x in [0, 1] with I_x(a, b) = q."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"a quantile needs 0 <= q <= 1, got {q}")
    if q in (0.0, 1.0):
        # Exact ends: bisection would stop where the CDF first rounds to 0 or 1.
        return q
    low, high = 0.0, 1.0
    for _ in range(_BISECTION_STEPS):
        mid = 0.5 * (low + high)
        if regularized_incomplete_beta(mid, a, b) < q:
            low = mid
        else:
            high = mid
    return 0.5 * (low + high)

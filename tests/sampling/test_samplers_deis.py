"""deis against its coefficients integrated exactly, and against the exact ODE solution.

diffusers' DEISMultistepScheduler is another formulation (exponential integrator in
log-SNR), so it is no oracle here. Instead the weights are checked on their own: each is an
integral of a Lagrange basis polynomial in DEIS's VP time, which oracles.py computes by
Gauss-Legendre quadrature over sigma (a change of variable, the VP process solved from its
end conditions). Our weights use ComfyUI's 10,000-point sum, which sits a few 1e-5 (relative)
off the exact integral; measured at most 3.6e-5.
"""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from latentloom.models.schedule import alphas_cumprod
from latentloom.sampling.discrete import DiscreteSchedule
from latentloom.sampling.samplers import SAMPLERS
from latentloom.sampling.samplers_deis import (
    deis_coefficients,
    dsigma_dtau,
    sample_deis,
    vp_time,
)
from latentloom.sampling.schedules import sigmas_karras
from tests.sampling.oracles import (
    GaussianData,
    compare,
    deis_exact_coefficients,
    deis_vp_process,
    ode_solution_between,
    start_noise,
)


def karras(steps: int) -> Tensor:
    return sigmas_karras(DiscreteSchedule.from_alphas_cumprod(alphas_cumprod()), steps)


def test_vp_time_is_the_inverse_of_the_process() -> None:
    beta_d, beta_min = deis_vp_process()
    taus = torch.tensor([1e-3, 0.01, 0.3, 1.0], dtype=torch.float64)
    sigmas = (torch.exp(beta_d * taus**2 / 2 + beta_min * taus) - 1).sqrt()
    torch.testing.assert_close(sigmas[[0, -1]], torch.tensor([0.002, 80.0], dtype=torch.float64))
    torch.testing.assert_close(vp_time(sigmas), taus, rtol=1e-12, atol=0)
    # ...and dsigma/dtau is the derivative of that sigma(tau).
    step = 1e-6
    numeric = (vp_time_inverse(taus + step) - vp_time_inverse(taus - step)) / (2 * step)
    torch.testing.assert_close(dsigma_dtau(taus), numeric, rtol=1e-6, atol=0)


def vp_time_inverse(taus: Tensor) -> Tensor:
    beta_d, beta_min = deis_vp_process()
    return (torch.exp(beta_d * taus**2 / 2 + beta_min * taus) - 1).sqrt()


@pytest.mark.parametrize("steps", [4, 10, 30])
def test_coefficients_are_the_exact_integrals(steps: int) -> None:
    sigmas = karras(steps).double()
    taus = vp_time(sigmas)
    for i in range(1, steps - 1):  # the step to 0 is Euler and has no weights
        order = min(i + 1, 3)
        ours = deis_coefficients(taus, i, order)
        exact = deis_exact_coefficients(sigmas, i, order)
        for mine, theirs in zip(ours, exact, strict=True):
            assert mine == pytest.approx(theirs, rel=1e-4)
        # The weights of a step sum to its length in sigma (a constant slope moves x by it).
        assert sum(ours) == pytest.approx(float(sigmas[i + 1] - sigmas[i]), rel=1e-4)


def test_first_and_last_steps_are_euler() -> None:
    data, sigmas = GaussianData.make(), karras(6)
    x = start_noise() * sigmas[0]
    euler_step = SAMPLERS["euler"](data.denoise, x, sigmas[:2])
    assert torch.equal(sample_deis(data.denoise, x, sigmas[:2]), euler_step)
    starts: list[Tensor] = []
    sample_deis(data.denoise, x, sigmas[:3], callback=lambda i, n, x, d: starts.append(x))
    assert torch.equal(starts[1], euler_step)  # the second step starts where Euler went
    predictions: list[Tensor] = []
    result = SAMPLERS["deis"](
        data.denoise, x, sigmas, callback=lambda i, n, x, denoised: predictions.append(denoised)
    )
    # Euler to sigma = 0 is the prediction, up to float32 rounding of x - sigma * (x - D) / sigma.
    torch.testing.assert_close(result, predictions[-1], rtol=0, atol=1e-6)


def test_third_order_multistep_converges() -> None:
    data = GaussianData.make()
    errors = []
    for steps in (10, 20):
        sigmas = karras(steps)[:-1]
        x = start_noise() * sigmas[0]
        exact = ode_solution_between(data, x, float(sigmas[0]), float(sigmas[-1]))
        errors.append(compare(sample_deis(data.denoise, x, sigmas), exact))
    # Measured 1.4e-2 -> 2.3e-3 (6x for twice the steps).
    assert errors[0] < 2e-2
    assert errors[1] < errors[0] / 5


def test_max_order_is_checked() -> None:
    data, sigmas = GaussianData.make(), karras(3)
    with pytest.raises(ValueError, match="deis's max_order must be 1 to 4, got 0"):
        sample_deis(data.denoise, start_noise(), sigmas, max_order=0)

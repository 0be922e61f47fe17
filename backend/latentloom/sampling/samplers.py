"""The sampler registry: names as they appear in workflows, mapped to sampler functions.

Samplers live in `samplers_euler.py` (single-step, Euler family), `samplers_dpmpp.py`
(DPM-Solver++) and `samplers_multistep.py` (LMS, UniPC), and one module each for
dpmpp_2s_ancestral, dpmpp_3m_sde, ipndm, deis, dpm_fast (`samplers_dpm_solver.py`) and
dpm_adaptive; this module only names them. Rectified-flow models (SD 3.x, FLUX) use the
flow variants of the stochastic samplers (`samplers_flow.py`); the deterministic ones need none.
"""

from __future__ import annotations

from latentloom.sampling.errors import UnknownNameError
from latentloom.sampling.protocols import SamplerFn
from latentloom.sampling.samplers_ancestral_2s import sample_dpmpp_2s_ancestral
from latentloom.sampling.samplers_deis import sample_deis
from latentloom.sampling.samplers_dpm_adaptive import sample_dpm_adaptive
from latentloom.sampling.samplers_dpm_solver import sample_dpm_fast
from latentloom.sampling.samplers_dpmpp import (
    sample_dpmpp_2m,
    sample_dpmpp_2m_sde,
    sample_dpmpp_sde,
)
from latentloom.sampling.samplers_dpmpp_3m_sde import sample_dpmpp_3m_sde
from latentloom.sampling.samplers_euler import (
    sample_ddim,
    sample_dpm_2,
    sample_dpm_2_ancestral,
    sample_euler,
    sample_euler_ancestral,
    sample_heun,
    sample_lcm,
)
from latentloom.sampling.samplers_flow import (
    sample_dpm_2_ancestral_flow,
    sample_dpmpp_2m_sde_flow,
    sample_dpmpp_2s_ancestral_flow,
    sample_euler_ancestral_flow,
    sample_lcm_flow,
)
from latentloom.sampling.samplers_flow_sde import (
    sample_dpmpp_3m_sde_flow,
    sample_dpmpp_sde_flow,
)
from latentloom.sampling.samplers_ipndm import sample_ipndm
from latentloom.sampling.samplers_multistep import sample_lms, sample_uni_pc, sample_uni_pc_bh2

SAMPLERS: dict[str, SamplerFn] = {
    "euler": sample_euler,
    "euler_ancestral": sample_euler_ancestral,
    "heun": sample_heun,
    "dpm_2": sample_dpm_2,
    "dpm_2_ancestral": sample_dpm_2_ancestral,
    "lms": sample_lms,
    "dpmpp_2m": sample_dpmpp_2m,
    "dpmpp_2m_sde": sample_dpmpp_2m_sde,
    "dpmpp_sde": sample_dpmpp_sde,
    "ddim": sample_ddim,
    "uni_pc": sample_uni_pc,
    "uni_pc_bh2": sample_uni_pc_bh2,
    "lcm": sample_lcm,
    "dpmpp_2s_ancestral": sample_dpmpp_2s_ancestral,
    "dpmpp_3m_sde": sample_dpmpp_3m_sde,
    "ipndm": sample_ipndm,
    "deis": sample_deis,
    "dpm_fast": sample_dpm_fast,
    "dpm_adaptive": sample_dpm_adaptive,
}

# Samplers that draw their noise from one seeded Brownian path on the CPU (see noise.py), as
# ComfyUI's do; every other stochastic sampler takes StepNoise.
BROWNIAN_NOISE_SAMPLERS: frozenset[str] = frozenset({"dpmpp_sde", "dpmpp_2m_sde", "dpmpp_3m_sde"})

# Samplers that, as in ComfyUI's KSampler, get a schedule computed for steps + 1 with its
# second-to-last sigma dropped: the same step count, but the last step starts lower.
DISCARD_PENULTIMATE_SAMPLERS: frozenset[str] = frozenset(
    {"dpm_2", "dpm_2_ancestral", "uni_pc", "uni_pc_bh2"}
)


# On a rectified-flow model these samplers run their flow form (see samplers_flow.py).
FLOW_SAMPLERS: dict[str, SamplerFn] = {
    "euler_ancestral": sample_euler_ancestral_flow,
    "dpm_2_ancestral": sample_dpm_2_ancestral_flow,
    "dpmpp_2s_ancestral": sample_dpmpp_2s_ancestral_flow,
    "dpmpp_2m_sde": sample_dpmpp_2m_sde_flow,
    "lcm": sample_lcm_flow,
    "dpmpp_sde": sample_dpmpp_sde_flow,
    "dpmpp_3m_sde": sample_dpmpp_3m_sde_flow,
}
# Samplers with no flow form, and what to use instead (today every sampler has one; a new
# variance-exploding sampler goes here until its flow form exists).
FLOW_REFUSED: dict[str, str] = {}


class SamplerNotForFlowError(ValueError):
    """A sampler that has no rectified-flow form was chosen for an SD3 / FLUX model."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(
            f"sampler {name!r} has no rectified-flow form and cannot sample an SD 3.x or "
            f"FLUX model; use {FLOW_REFUSED[name]}"
        )


def get_sampler(name: str, kind: str | None = None) -> SamplerFn:
    """The sampler called `name` for a model of sampling `kind` ("flow" picks flow forms).

    Unknown names raise UnknownNameError listing valid ones; a sampler with no flow form asked
    for a flow model raises SamplerNotForFlowError naming what to use.
    """
    if name not in SAMPLERS:
        raise UnknownNameError("sampler", name, tuple(SAMPLERS))
    if kind == "flow":
        if name in FLOW_REFUSED:
            raise SamplerNotForFlowError(name)
        return FLOW_SAMPLERS.get(name, SAMPLERS[name])
    return SAMPLERS[name]

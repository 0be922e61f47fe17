"""The sampler registry: names as they appear in workflows, mapped to sampler functions.

Samplers live in `samplers_euler.py` (single-step, Euler family), `samplers_dpmpp.py`
(DPM-Solver++) and `samplers_multistep.py` (LMS, UniPC), and one module each for
dpmpp_2s_ancestral, dpmpp_3m_sde, ipndm, deis, dpm_fast (`samplers_dpm_solver.py`) and
dpm_adaptive; this module only names them.
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


def get_sampler(name: str) -> SamplerFn:
    """The sampler called `name`; unknown names raise UnknownNameError listing valid ones."""
    if name not in SAMPLERS:
        raise UnknownNameError("sampler", name, tuple(SAMPLERS))
    return SAMPLERS[name]

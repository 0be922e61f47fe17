"""Sampling: sigma schedules, k-diffusion style samplers, the guided denoiser, `run.sample`.

`discrete` maps a model's training schedule to sigmas; `schedules` and `samplers` are explicit
registries of pure functions (SCHEDULES, SAMPLERS); `noise` holds the seeded noise sources;
`denoiser` wraps a DiffusionModel with classifier-free guidance; `run.sample` ties them together.
"""

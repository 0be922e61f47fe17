"""Upper bounds on sizes a workflow may ask for, so one request cannot exhaust the machine.

Validation refuses anything past these with a problem naming the node, the input and the
bound; the memory and work budgets (`graph/budget.py`) then weigh what remains.
"""

MAX_SIDE = 8192  # pixels, width or height
MAX_BATCH = 64
MAX_FRAMES = 1024  # ratios in one Latent Interpolation list: frames of a morph
# Entries of a sampler's schedule: steps / denoise below full denoise. A denoise near 0 must
# not build a 10⁹-entry schedule; 10,000 covers 20 steps at denoise 0.002.
MAX_SCHEDULE_LENGTH = 10_000
MAX_TEXT_LENGTH = 20_000  # characters in one STRING input: a prompt of ~5,000 tokens

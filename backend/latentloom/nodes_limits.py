"""Upper bounds on sizes a workflow may ask for, so one request cannot exhaust the machine."""

MAX_SIDE = 8192  # pixels, width or height
MAX_BATCH = 64
MAX_FRAMES = 1024

"""Preprocessors: the pictures a ControlNet or T2I-Adapter reads, made without downloaded weights.

`canny` (kornia's Canny in torch), `lines` (scribbles and line art), `depth` (depth and normal
maps from an uploaded depth map), `openpose` and `pose_draw` (OpenPose JSON read and drawn as
the standard skeleton) are plain tensor functions; `registry` turns a `Preprocessor`
declaration into a node, the way the built-in pack and any other pack add preprocessors
(model-based ones included: see its docstring). Nodes reach all of it through `latentloom.api`.
"""

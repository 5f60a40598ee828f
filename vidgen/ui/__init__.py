"""Helpers behind the Gradio app (app.py): everything except the layout and the wiring.

- `engine`: the shared, lazily loaded pipeline; turns the app's inputs into a streamed generation
  (previews, live attention, MP4/GIF/maps files, the explorer's data), one run at a time.
- `explorer`: the attention explorer's data and its four views (words, frames, pixels, sound).
- `views`: pictures as numpy arrays (frame grids, overlays, matrices), crisp nearest upscaling.
- `text`: the page's words (intro, lessons, "How it works", examples).
- `gpu`: optional ZeroGPU `spaces.GPU`, a no-op elsewhere.

Nothing here imports gradio, so all of it is unit-testable. Submodules are not imported here:
`gpu` has to be imported before torch initialises CUDA.
"""

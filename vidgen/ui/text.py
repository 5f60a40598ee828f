"""The words on the page: intro, vocabulary, warnings, explorer lessons, "How it works", examples.

Kept apart from the layout so the teaching text can be read and reviewed in one place.
"""

from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parents[2] / "assets"

TITLE = "vidgen · watch a video denoise, and see where it attends"

INTRO = """\
# vidgen: watch a video denoise, and see where it attends
A small attention-based video diffusion model, trained on a toy world of coloured shapes.
Type a prompt, press **Generate**, and watch every denoising step live, with the attention of that step.
Afterwards, the **Attention explorer** lets you scrub through layers, heads and steps.
"""

# (label, prompt, image file in assets/, audio file in assets/)
EXAMPLES: list[tuple[str, str, str | None, str | None]] = [
    ("text only", "a red circle moving left", None, None),
    ("two objects", "a big blue square moving up and a yellow circle moving right", None, None),
    ("image → video", "a green triangle moving right", "example_first_frame.png", None),
    ("audio → video", "a big purple circle moving down", None, "example_beats.wav"),
]


def example_rows(assets: Path = ASSETS) -> tuple[list[list], list[str]]:
    """gr.Examples rows [prompt, image path, audio path] and their labels."""
    rows = [[prompt, str(assets / img) if img else None, str(assets / aud) if aud else None]
            for _, prompt, img, aud in EXAMPLES]
    return rows, [label for label, *_ in EXAMPLES]


def vocabulary_markdown(vocabulary: tuple[str, ...] | list[str], grammar: str | None = None,
                        error: str | None = None) -> str:
    if error:
        return (f"⚠️ **No model loaded.** {error}  \nTrain one (`python -m vidgen train`) or point "
                f"`VIDGEN_CHECKPOINT` at a checkpoint folder, then restart the app.")
    if not vocabulary:
        return "This model was trained with an open vocabulary: any English words are tokenized."
    words = " ".join(f"`{w}`" for w in vocabulary)
    text = f"**Words this model knows** (it was trained on nothing else): {words}"
    if grammar:
        text += f"  \nPrompts follow: `{grammar}`"
    return text


def unknown_words_markdown(unknown: list[str]) -> str:
    """The warning under the prompt, naming the words the model never saw ("" when there are none)."""
    if not unknown:
        return ""
    names = ", ".join(f"**{w}**" for w in unknown)
    return (f"⚠️ The model never saw {names}. It will ignore {'it' if len(unknown) == 1 else 'them'} "
            f"instead of understanding {'it' if len(unknown) == 1 else 'them'}; use the words listed below.")


LIVE_HELP = ("The preview shows the model's current guess of the finished video (its x0 estimate) at every "
             "step; the strip below it shows, for the main words, where that step's cross-attention looked.")

EXPLORER_INTRO = """\
## Attention explorer
Attention is how each token decides what to read: a row of weights that sums to 1. The model recorded
every attention map of the last run. The sliders pick a layer, a head and a denoising step
(**0 = average over all**), for every view below.
"""

WORDS_HELP = ("**Words → pixels.** Cross-attention: every pixel token of every frame reads the prompt's tokens. "
              "Pick a word to see which pixels read it most: if the model has learned the word, the heat sits on "
              "the object it names, and follows it from frame to frame.")
FRAMES_HELP = ("**Frames → frames.** Temporal attention: at each position, frame *i* (row) reads frames *j* "
               "(columns). Before the softmax, the model adds γ·B: B is a learned bias by frame distance and γ a "
               "learned gate. A bright band near the diagonal means frames mostly copy their neighbours, which keeps "
               "the video smooth. Try the γ override in Advanced and compare.")
PIXELS_HELP = ("**Pixels → pixels.** Spatial self-attention: inside one frame, every grid cell reads the other "
               "cells. Click a point on any frame to see where that cell looks; cells on an object tend to read "
               "the rest of the same object, which is how a shape stays in one piece.")
SOUND_HELP = ("**Sound → frames.** With an audio clip, the prompt gets one extra token per video frame, made from "
              "that moment's spectrum and loudness. Each row shows which audio moments a frame reads; the bars "
              "below are the clip's loudness, which in this world drives the object's size.")

HOW_IT_WORKS = """\
**Diffusion.** Training takes a video, adds Gaussian noise of a random strength *t* and teaches a network to undo
it (it predicts *v*, a mix of the clean video and the noise). Generation runs this backwards: it starts from
pure noise, and at each step the network estimates the clean video (the **x0 estimate** you see in the preview),
then the sampler (DDIM by default) moves the noisy sample a little towards that estimate. Early steps decide
layout and motion, late steps only sharpen. **Guidance** runs the model with and without the prompt and
extrapolates towards the prompt: output = unconditional + g · (conditional − unconditional).

**Decoupled spatial and temporal attention.** The video is cut into an 8×8 grid of tokens per frame. Each
transformer block first runs **spatial** self-attention (the tokens of one frame read each other: shapes),
then **temporal** self-attention (each grid position reads the same position in the other frames: motion).
Splitting space and time costs F·N² + N·F² instead of (F·N)² for full space-time attention.

**Cross-attention.** Then every token reads the **condition tokens**: the prompt's words, encoded by a small
CLIP-style text transformer, plus one token per frame from the audio's log-mel spectrogram when a clip is given.
This is how words steer pixels, and what *Words → pixels* shows. A first-frame image instead enters as extra
input channels of frame 0.

**The gate.** Temporal attention adds γ·B to its scores: B is a learned bias that depends only on the distance
between two frames (nearby frames start out preferred), and γ a learned scalar gate. γ = 0 removes the distance
preference; a large γ makes frames read mostly their neighbours. Switching temporal attention off (Advanced)
denoises every frame on its own: watch the motion fall apart.

**What the maps mean.** A map is a row of attention weights (they sum to 1), recorded by swapping in an
attention processor that keeps the probabilities; averaging over layers, heads or steps is your choice.
Word maps are scaled per word (brightest = the word's maximum over the whole clip). Attention shows what the
model *reads*, which often, but not always, explains what it *draws*.
"""


def card_markdown(card: str | None) -> str:
    if not card:
        return "*No model card (`card.md`) was found next to this checkpoint.*"
    return card


def diagram_html(assets: Path = ASSETS) -> str:
    """The inline SVG diagram (inlined: the app serves no files from disk besides its outputs)."""
    path = assets / "how-it-works.svg"
    if not path.is_file():
        return ""
    svg = path.read_text(encoding="utf-8")
    return f'<div class="vg-diagram">{svg[svg.find("<svg"):]}</div>'

"""vidgen's Gradio app: layout and wiring only (the work is in vidgen/ui and vidgen/pipeline).

    python app.py                                   # http://127.0.0.1:7860, $VIDGEN_CHECKPOINT or the shipped one
    GRADIO_SERVER_NAME=0.0.0.0 python app.py        # what a Space does

    from gradio_client import Client
    Client("http://127.0.0.1:7860").predict("a red circle moving left", api_name="/generate")
"""

from __future__ import annotations

import contextlib
import os
import warnings

from vidgen.ui import gpu  # noqa: F401, I001  (first: `spaces` must load before torch touches CUDA)

import gradio as gr

from vidgen.samplers import SAMPLERS
from vidgen.ui import text
from vidgen.ui.engine import PREVIEW_MODES, Defaults, Engine, make_request
from vidgen.ui.explorer import Selection, render_all
from vidgen.world import GRAMMAR, VOCABULARY

# Examples give only prompt, image and audio; the example function fills in the rest itself.
warnings.filterwarnings("ignore", message="Examples will be cached but not all input components")

QUEUE = dict(max_size=16, default_concurrency_limit=1)  # one generation at a time; 16 may wait

# Updates leak in Gradio 6 when a component also takes plain values: an update (gr.skip() included)
# replaces the component in the session's state by a fresh copy with a new id, and the next plain
# value stores that copy a second time under its own id, where it stays: every update-then-value
# cycle leaves one more component in the session (4 per generation here, ~57 KB). The files of those
# values are recorded on the copy, where delete_cache (it sweeps the rendered components' files only)
# never finds them, not even at shutdown. So outputs that take values never get updates here: they
# are sent their current value again instead. Only the explorer's word/layer/head/step controls
# (updates only) and gr.State (exempt) get updates.


def launch_options() -> dict:
    """Safe serving defaults (also used by the tests). Binds 127.0.0.1 unless GRADIO_SERVER_NAME says
    otherwise; the port comes from GRADIO_SERVER_PORT or the first free one from 7860."""
    return dict(
        max_file_size="20mb", show_error=False, enable_monitoring=False, strict_cors=True,
        state_session_capacity=64, css=(text.ASSETS / "app.css").read_text(), footer_links=["api", "gradio"],
    )


def refuse_unreadable(image: gr.Image) -> gr.Image:
    """Turn an unreadable upload into a clear gr.Error (PIL fails inside gr.Image.preprocess, which
    would reach users as an anonymous error). Patched on the instance: a gr.Image subclass would
    make Gradio write a .pyi stub next to this file at import."""
    preprocess = image.preprocess

    def checked(payload):
        try:
            return preprocess(payload)
        except gr.Error:
            raise
        except Exception as e:  # PIL raises many types for non-images and truncated files
            name = getattr(payload, "orig_name", None) or "the uploaded file"
            raise gr.Error(f"{name} is not a readable image ({type(e).__name__}); use a PNG, JPEG or WebP file.",
                           print_exception=False) from None

    image.preprocess = checked
    return image


@contextlib.contextmanager
def examples_cache(key: str):
    """Cache examples in a subfolder per checkpoint (Gradio reads GRADIO_EXAMPLES_CACHE when an
    Examples is built): a retrained model must not show the previous model's cached videos."""
    before = os.environ.get("GRADIO_EXAMPLES_CACHE")
    os.environ["GRADIO_EXAMPLES_CACHE"] = os.path.join(before or os.path.join(".gradio", "cached_examples"), key)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("GRADIO_EXAMPLES_CACHE")
        else:
            os.environ["GRADIO_EXAMPLES_CACHE"] = before


def build_demo(pipe_or_checkpoint=None, *, defaults: Defaults | None = None, device: str | None = None) -> gr.Blocks:
    """The app, built but not launched. `pipe_or_checkpoint`: a VideoPipeline, a checkpoint folder or
    Hub id (default: $VIDGEN_CHECKPOINT or checkpoints/vidgen-shapes). Nothing is loaded until the
    first generation, except the checkpoint's config.json and card.md."""
    engine = Engine(pipe_or_checkpoint, device=device, defaults=defaults)
    d, info = engine.defaults, engine.info()
    cfg = info.config
    max_frames, frames = (cfg.max_frames, d.frames or cfg.num_frames) if cfg else (32, d.frames or 16)
    grammar = GRAMMAR if cfg is not None and set(cfg.vocabulary) == set(VOCABULARY) else None
    # A distilled checkpoint samples with its own few-step "fast" sampler by default: in the page, for
    # API calls that leave the sampler out, and for the cached examples.
    distilled = cfg is not None and bool(cfg.distilled_steps)
    default_sampler = "fast" if distilled else d.sampler

    def generate(prompt, image=None, audio=None, seed=d.seed, random_seed=d.random_seed, sampler=default_sampler,
                 steps=d.steps, guidance=d.guidance, num_frames=frames, negative_prompt="", temporal_attention=True,
                 override_gamma=False, gamma=d.gamma, preview=d.preview):
        try:
            req = make_request(prompt, image, audio, seed, random_seed, sampler, steps, guidance, num_frames,
                               negative_prompt, temporal_attention, override_gamma, gamma, preview)
            # What each output shows now. An update that leaves an output unchanged re-sends its value
            # (Gradio only touches a file it has cached already) instead of gr.skip(): see "Updates leak".
            shown: dict[str, object] = dict(preview=None, attention=None, video=None, files=None)
            for u in engine.generate(req):
                for w in u.warnings:
                    gr.Warning(w)
                if u.step == 1 and u.video is None:  # a new run clears the last one's pictures, video and files
                    shown = dict.fromkeys(shown)
                shown.update({k: v for k in shown if (v := getattr(u, k)) is not None})
                yield (shown["preview"], shown["attention"], u.status, shown["video"], shown["files"],
                       u.seed, u.explorer or gr.skip())  # gr.skip() is safe for a gr.State
        except (ValueError, FileNotFoundError) as e:  # the pipeline's human sentences, verbatim
            raise gr.Error(str(e), print_exception=False) from None

    def example(prompt, image=None, audio=None):  # fixed settings and seed, so the cache is reproducible
        for out in generate(prompt, image, audio, seed=0, random_seed=False):
            yield out[:5]

    def explore(data, word, layer, head, step, point):
        return render_all(data, word, Selection.of(layer, head, step), point)

    def refresh(data):
        """New run: fit the controls to it, then draw every view with the default selection."""
        if data is None:
            return (gr.skip(),) * 5 + render_all(None, None, Selection(), None)
        return (gr.Dropdown(choices=data.words, value=data.default_word()),
                gr.Slider(maximum=len(data.blocks), value=0), gr.Slider(maximum=max(data.heads, 1), value=0,
                interactive=data.heads > 0), gr.Slider(maximum=data.num_steps, value=0), None,
                *render_all(data, data.default_word(), Selection(), None))

    def pick(data, layer, head, step, point, evt: gr.SelectData):
        """A click on Pixels -> pixels picks the cell to look from; a click between frames keeps the
        last one and redraws it (not gr.skip(): see "Updates leak" at the top of this file)."""
        if data is None:
            return *render_all(None, None, Selection(), None)[4:6], None
        point = data.locate_click(*evt.index[:2]) or point
        img, caption, _ = data.pixels_view(Selection.of(layer, head, step), point)
        return img, caption, point

    with gr.Blocks(title=text.TITLE, delete_cache=(600, 1800), analytics_enabled=False) as demo:
        gr.Markdown(text.INTRO)
        explorer_state, point_state = gr.State(None, time_to_live=1800), gr.State(None)
        with gr.Row():
            with gr.Column(scale=2):
                prompt = gr.Textbox(label="Prompt", value="a red circle moving left", lines=2, max_length=500,
                                    placeholder="a red circle moving left", elem_id="vg-prompt")
                unknown = gr.Markdown(elem_id="vg-unknown")
                gr.Markdown(text.vocabulary_markdown(engine.vocabulary(), grammar, info.error), elem_id="vg-vocab")
                with gr.Row():
                    image = refuse_unreadable(gr.Image(label="First frame (optional)", type="filepath",
                                                       image_mode=None, sources=["upload", "clipboard"], height=180))
                    audio = gr.Audio(label="Sound (optional)", type="filepath", sources=["upload", "microphone"])
                with gr.Row():
                    seed = gr.Number(label="Seed", value=d.seed, precision=0, minimum=0, maximum=2**63 - 1, elem_id="vg-seed")
                    random_seed = gr.Checkbox(label="random seed", value=d.random_seed, elem_id="vg-random")
                with gr.Accordion("Advanced", open=False):
                    # "fast" (the distilled student's own few-step DDIM) only for distilled checkpoints
                    fast = ["fast"] if distilled else []
                    sampler = gr.Dropdown(sorted(SAMPLERS) + fast, value=default_sampler, label="Sampler")
                    steps = gr.Slider(1, 100, value=d.steps, step=1, label="Denoising steps")
                    guidance = gr.Slider(0, 20, value=d.guidance, step=0.5, label="Guidance scale")
                    num_frames = gr.Slider(1, max_frames, value=frames, step=1, label="Frames")
                    negative = gr.Textbox("", label="Negative prompt", placeholder="what to steer away from")
                    temporal = gr.Checkbox(value=True, label="temporal attention",
                                           info="untick to denoise every frame on its own (ablation)")
                    with gr.Row():
                        override = gr.Checkbox(label="override the gate γ")
                        gamma = gr.Slider(0, 3, value=d.gamma, step=0.05, label="γ")
                    preview_mode = gr.Radio(list(PREVIEW_MODES), value=d.preview, label="Preview shows")
                with gr.Row():
                    run_btn = gr.Button("Generate", variant="primary", elem_id="vg-generate")
                    stop_btn = gr.Button("Stop", variant="stop", elem_id="vg-stop")
            with gr.Column(scale=3):
                status = gr.Markdown("Press **Generate**.", elem_id="vg-status")
                preview = gr.Image(label="Denoising preview", format="jpeg", interactive=False,
                                   elem_id="vg-preview", elem_classes="vg-pixelated")
                live = gr.Image(label="Attention at this step", format="jpeg", interactive=False,
                                elem_id="vg-live", elem_classes="vg-pixelated")
                gr.Markdown(text.LIVE_HELP)
                video = gr.Video(label="Video", interactive=False, autoplay=True, loop=True, height=320,
                                 elem_id="vg-video")
                files = gr.File(label="Downloads: MP4, GIF, attention maps (.npz)", file_count="multiple",
                                interactive=False, elem_id="vg-files")
        rows, labels = text.example_rows()
        with examples_cache(engine.fingerprint()):
            gr.Examples(rows, [prompt, image, audio], [preview, live, status, video, files], fn=example,
                        cache_examples=True, cache_mode="lazy", example_labels=labels, label="Examples")

        gr.Markdown(text.EXPLORER_INTRO)
        with gr.Row():
            word = gr.Dropdown([], label="Word", allow_custom_value=True, elem_id="vg-word")
            layer = gr.Slider(0, 1, value=0, step=1, label="Layer (0 = all)")
            head = gr.Slider(0, 1, value=0, step=1, label="Head (0 = average)", interactive=False)
            step = gr.Slider(0, 1, value=0, step=1, label="Denoising step (0 = all)", elem_id="vg-step")
        view_outputs = []
        with gr.Tabs():
            for title, help_text, key in (("Words → pixels", text.WORDS_HELP, "words"),
                                          ("Frames → frames", text.FRAMES_HELP, "frames"),
                                          ("Pixels → pixels", text.PIXELS_HELP, "pixels"),
                                          ("Sound → frames", text.SOUND_HELP, "sound")):
                with gr.Tab(title, elem_id=f"vg-tab-{key}"):
                    gr.Markdown(help_text)
                    view_outputs += [gr.Image(show_label=False, format="png", interactive=False,
                                              elem_id=f"vg-{key}-img", elem_classes="vg-pixelated"),
                                     gr.Markdown(elem_id=f"vg-{key}-caption")]
        pixels_img = view_outputs[4]

        with gr.Accordion("How it works", open=False, elem_id="vg-how"):
            gr.HTML(text.diagram_html())
            gr.Markdown(text.HOW_IT_WORKS)
            with gr.Accordion("Model card", open=False):
                gr.Markdown(text.card_markdown(info.card))

        # ------------------------------------------------------------------ wiring
        prompt.change(lambda p: text.unknown_words_markdown(engine.unknown_words(p)), prompt, unknown,
                      queue=False, show_progress="hidden", api_visibility="private")
        inputs = [prompt, image, audio, seed, random_seed, sampler, steps, guidance, num_frames, negative,
                  temporal, override, gamma, preview_mode]
        gen = run_btn.click(generate, inputs, [preview, live, status, video, files, seed, explorer_state],
                            api_name="generate", show_progress="minimal", concurrency_id="model")
        gen.success(refresh, explorer_state, [word, layer, head, step, point_state, *view_outputs],
                    show_progress="hidden", api_visibility="private")
        stop_btn.click(None, None, None, cancels=[gen], api_visibility="private")
        controls = [explorer_state, word, layer, head, step, point_state]
        gr.on([word.input, layer.input, head.input, step.input], explore, controls, view_outputs,
              trigger_mode="always_last", show_progress="hidden", concurrency_limit=4,
              concurrency_id="explorer", api_visibility="private")
        pixels_img.select(pick, [explorer_state, layer, head, step, point_state],
                          [pixels_img, view_outputs[5], point_state], show_progress="hidden", concurrency_limit=4,
                          concurrency_id="explorer", api_visibility="private")
    demo.engine = engine  # for tests and warm-up
    return demo


if __name__ == "__main__":
    demo = build_demo()
    try:
        demo.engine.pipeline()  # load the checkpoint once, before the first visitor (ZeroGPU needs it here)
    except ValueError as e:
        print(f"warning: {e}")  # the page explains what is missing
    demo.queue(**QUEUE).launch(**launch_options())

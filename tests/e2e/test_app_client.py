"""The app end to end through gradio_client, against a real server on a free localhost port."""

from __future__ import annotations

import time
import urllib.error
import urllib.request

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from vidgen.video_io import read_npz, read_video

pytestmark = [pytest.mark.e2e, *[pytest.mark.filterwarnings(f) for f in (
    "ignore:.*no_silent_downcasting", "ignore:The copy keyword is deprecated",  # pandas 3 inside gradio
    "ignore:Examples will be cached but not all input components")]]  # examples give 3 of 14 inputs


@pytest.fixture(scope="module")
def client(app_server, tmp_path_factory):
    url, _ = app_server
    c = Client(url, download_files=str(tmp_path_factory.mktemp("downloads")), verbose=False)
    yield c
    c.close()


def _wait(predicate, timeout: float = 30.0, every: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(every)
    return predicate()


def test_generate_returns_playable_mp4_and_maps(client):
    preview, attention, status, video, files, seed, *_ = client.predict("a red circle moving left",
                                                                       api_name="/generate")
    assert "Done" in status and isinstance(seed, int)
    frames, fps, has_audio = read_video(video)  # gradio_client downloads it and gives its path
    assert frames.shape[0] == 4 and fps == 8 and not has_audio
    names = sorted(str(f).rsplit("/", 1)[-1] for f in files)
    assert names == ["vidgen-maps.npz", "vidgen.gif", "vidgen.mp4"]
    npz = next(f for f in files if str(f).endswith(".npz"))
    maps_frames, maps, meta = read_npz(npz)
    assert maps_frames.shape[0] == 4 and "word/circle" in maps and "temporal" in maps
    assert maps["step_word/circle"].shape[0] == 3 and meta["prompt"] == "a red circle moving left"
    assert preview.endswith(".jpg") and attention.endswith(".jpg")  # fast to encode, light to send


def test_audio_and_image_inputs(client, tmp_path):
    from vidgen.ui.text import ASSETS

    out = client.predict("a big purple circle moving down", image=handle_file(str(ASSETS / "example_first_frame.png")),
                         audio=handle_file(str(ASSETS / "example_beats.wav")), api_name="/generate")
    assert read_video(out[3])[2], "the MP4 carries the sound"


def test_stream_yields_more_than_one_update(client):
    job = client.submit("a blue square moving up", steps=3, api_name="/generate")
    job.result(timeout=120)
    outputs = job.outputs()
    assert len(outputs) >= 4  # one per step, then the video, then the downloads
    statuses = [o[2] for o in outputs]
    assert any("Step 1 / 3" in s for s in statuses) and "Done" in statuses[-1]


def test_cancel_stops_compute_and_next_job_works(client, app_server):
    engine = app_server[1].engine
    job = client.submit("a green triangle moving right", steps=100, api_name="/generate")
    assert _wait(lambda: len(job.outputs()) >= 2 and engine.active > 0), "the job never started streaming"
    job.cancel()
    assert _wait(lambda: engine.active == 0, timeout=20), "the generator was not closed after the cancel"
    stopped_at = engine.steps_done
    time.sleep(0.5)
    assert engine.steps_done == stopped_at, "steps kept running after the cancel"
    assert not any(isinstance(o[3], str) for o in job.outputs()), "a cancelled job must not produce a video"
    out = client.predict("a red circle moving left", steps=2, api_name="/generate")
    assert "Done" in out[2]


@pytest.mark.parametrize("prompt,image,message", [
    ("", None, "prompt is empty"),
    ("   ", None, "prompt is empty"),
    ("hello world", None, "none of the prompt's words are known"),
    ("a red circle moving left", "garbage", "not a readable image"),
])
def test_bad_input_gives_a_clear_message(client, tmp_path, prompt, image, message):
    kwargs = {}
    if image == "garbage":
        bad = tmp_path / "photo.png"
        bad.write_bytes(b"this is not an image")
        kwargs["image"] = handle_file(str(bad))
    with pytest.raises(AppError, match=message):
        client.predict(prompt, api_name="/generate", **kwargs)


def test_arbitrary_files_are_not_served(app_server):
    url = app_server[0].rstrip("/")
    for path in ("/file=/etc/passwd", "/gradio_api/file=/etc/passwd", "/gradio_api/file=app.py"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(url + path, timeout=10)
        assert err.value.code in (403, 404)

"""Find a checkpoint folder: a local path, or a Hugging Face Hub repo id through huggingface_hub.

Hub downloads honour HF_HUB_OFFLINE and the local cache, and fetch only the safetensors + JSON
files a checkpoint needs (never pickles).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / "checkpoints" / "vidgen-shapes"
CHECKPOINT_FILES = ["config.json", "model.safetensors", "card.md"]
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")


def default_checkpoint() -> str:
    """$VIDGEN_CHECKPOINT if set, else the checkpoint shipped in the repository."""
    return os.environ.get("VIDGEN_CHECKPOINT") or str(DEFAULT_CHECKPOINT)


def is_hub_id(name: str) -> bool:
    """A well-formed "owner/name" repo id (no "..", no leading dots or slashes)."""
    return bool(_HUB_ID.match(name)) and ".." not in name


def _hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def resolve_checkpoint(name_or_path: str | os.PathLike, *, allowed_root: str | os.PathLike | None = None) -> Path:
    """A local checkpoint folder for `name_or_path`.

    - An existing folder is used as is. With `allowed_root`, it must lie inside that root (after
      resolving symlinks and ".."), so a name from a user or an env var cannot escape it.
    - Otherwise a well-formed Hub id is fetched with huggingface_hub (from the cache when offline).
    Raises ValueError with a readable message for anything unreachable or malformed.
    """
    name = os.fspath(name_or_path)
    if not name or not name.strip():
        raise ValueError("empty checkpoint name")
    path = Path(name).expanduser()
    if path.is_dir():
        if allowed_root is not None:
            root = Path(allowed_root).resolve()
            if not path.resolve().is_relative_to(root):
                raise ValueError(f"checkpoint folder {name!r} is outside the allowed root {str(root)!r}")
        return path
    if not is_hub_id(name):  # paths like "./x", "/x", "~/x" or "a/b/c" never match a Hub id
        raise ValueError(
            f"checkpoint {name!r} not found: give an existing local folder (config.json + model.safetensors) "
            f"or a Hugging Face Hub id like 'owner/name'"
        )
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    offline = _hub_offline()
    # "owner/name" is also a relative path; say both, since either may be what the user meant.
    what = f"checkpoint not found: no local folder {name!r}, and as a Hub id"
    try:
        folder = snapshot_download(name, allow_patterns=CHECKPOINT_FILES, local_files_only=offline)
    except LocalEntryNotFoundError:
        why = "HF_HUB_OFFLINE is set and it is not in the local cache" if offline else "it is not cached and the Hub is unreachable"
        raise ValueError(f"{what} {why}") from None
    except (HfHubHTTPError, OSError) as e:
        raise ValueError(f"{what} the download failed ({e})") from None
    return Path(folder)

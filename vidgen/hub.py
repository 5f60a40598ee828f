"""Find a checkpoint folder: a local path, or a Hugging Face Hub repo id through huggingface_hub.

Hub downloads honour HF_HUB_OFFLINE and the local cache, and fetch only the safetensors + JSON
files a checkpoint needs (never pickles).

Names from outside (a UI field, an env var) go through `resolve_user_checkpoint(name)`:

- a local folder is accepted only inside the checkpoint root: $VIDGEN_CHECKPOINT_ROOT, by default
  the repository's `checkpoints/` folder (`checkpoint_root()`). A relative name is looked up under
  the root (then under the working directory); `..` components, absolute paths outside the root,
  and symlinks (of the folder or of its config/weights files) that lead outside it are refused;
- anything else must be a well-formed Hub id ("owner/name"), fetched as above.

    resolve_user_checkpoint(None)             # $VIDGEN_CHECKPOINT or the shipped checkpoint, checked
    resolve_user_checkpoint("vidgen-shapes")  # <root>/vidgen-shapes
    resolve_user_checkpoint("org/model")      # <root>/org/model if that folder exists, else the Hub

If $VIDGEN_CHECKPOINT names a folder outside the repository, set $VIDGEN_CHECKPOINT_ROOT to a folder
that contains it. Trusted callers (the CLI, scripts) use `resolve_checkpoint(name)`, which accepts any
existing folder; `resolve_checkpoint(name, allowed_root=...)` applies the rules above to any root.
Every refusal is a ValueError with a readable message.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

REPO_CHECKPOINTS = Path(__file__).resolve().parent.parent / "checkpoints"
DEFAULT_CHECKPOINT = REPO_CHECKPOINTS / "vidgen-shapes"
CHECKPOINT_FILES = ["config.json", "model.safetensors", "card.md"]
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
MAX_NAME_LENGTH = 1024


def default_checkpoint() -> str:
    """$VIDGEN_CHECKPOINT if set, else the checkpoint shipped in the repository (a name, unchecked:
    pass it through `resolve_user_checkpoint` when it should be validated)."""
    return os.environ.get("VIDGEN_CHECKPOINT") or str(DEFAULT_CHECKPOINT)


def checkpoint_root() -> Path:
    """$VIDGEN_CHECKPOINT_ROOT if set, else the repository's checkpoints/ folder: where names from
    users and env vars may point."""
    return Path(os.environ.get("VIDGEN_CHECKPOINT_ROOT") or REPO_CHECKPOINTS).expanduser()


def is_hub_id(name: str) -> bool:
    """A well-formed "owner/name" repo id (no "..", no leading dots or slashes)."""
    return isinstance(name, str) and bool(_HUB_ID.match(name)) and ".." not in name


def _hub_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def _inside(path: Path, root: Path) -> bool:
    return path.resolve().is_relative_to(root)


def _local_under_root(name: str, root: Path) -> Path | None:
    """The existing folder `name` names under `root`, None if there is none; ValueError if it escapes."""
    root = root.resolve()
    path = Path(name).expanduser()
    if ".." in path.parts:
        raise ValueError(f"checkpoint name {name!r} contains '..'; give a folder inside {str(root)!r} or a Hub id")
    candidates = [path] if path.is_absolute() else [root / path, path]  # under the root, then the CWD
    for candidate in candidates:
        if not candidate.is_dir():
            if candidate.exists():
                raise ValueError(f"checkpoint {name!r} is not a folder; give a folder inside {str(root)!r} or a Hub id")
            continue
        if not _inside(candidate, root):
            raise ValueError(f"checkpoint folder {name!r} is outside the allowed root {str(root)!r}")
        for file in ("config.json", "model.safetensors"):  # a file symlinked out of the root is refused too
            if (candidate / file).exists() and not _inside(candidate / file, root):
                raise ValueError(f"{file} of checkpoint {name!r} links outside the allowed root {str(root)!r}")
        return candidate
    if path.is_absolute():
        raise ValueError(f"checkpoint {name!r} does not exist; give a folder inside {str(root)!r} or a Hub id")
    return None


def resolve_checkpoint(name_or_path: str | os.PathLike, *, allowed_root: str | os.PathLike | None = None) -> Path:
    """A local checkpoint folder for `name_or_path`.

    - An existing folder is used as is. With `allowed_root`, it must lie inside that root (after
      resolving symlinks; ".." is refused outright), and a relative name is looked up under the root
      first, so a name from a user or an env var cannot escape it.
    - Otherwise a well-formed Hub id is fetched with huggingface_hub (from the cache when offline).
    Raises ValueError with a readable message for anything unreachable or malformed.
    """
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise ValueError(f"a checkpoint must be a folder path or a Hub id, got {type(name_or_path).__name__}")
    name = os.fspath(name_or_path)
    if isinstance(name, bytes):
        raise ValueError("a checkpoint name must be text, got bytes")
    if not name or not name.strip():
        raise ValueError("empty checkpoint name")
    if len(name) > MAX_NAME_LENGTH or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ValueError(f"checkpoint name {name[:60]!r} is malformed (too long or with control characters)")
    try:
        if allowed_root is not None:
            folder = _local_under_root(name, Path(allowed_root).expanduser())
            if folder is not None:
                return folder
        else:
            path = Path(name).expanduser()
            if path.is_dir():
                return path
    except OSError as e:  # e.g. a name longer than the file system allows
        raise ValueError(f"checkpoint name {name[:60]!r} cannot be used as a path ({e.strerror or e})") from None
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
    except (HfHubHTTPError, OSError, ValueError) as e:
        raise ValueError(f"{what} the download failed ({e})") from None
    return Path(folder)


def resolve_user_checkpoint(name: str | os.PathLike | None = None) -> Path:
    """`resolve_checkpoint` for a name from outside (UI, env var): None means `default_checkpoint()`;
    local folders must lie inside `checkpoint_root()`."""
    return resolve_checkpoint(default_checkpoint() if name is None else name, allowed_root=checkpoint_root())

"""Weight files: read safely, saved as safetensors, and described when they cannot be used.

Every file is read by :func:`read_weight_file`: safetensors, or torch files with
``torch.load(..., weights_only=True)``. Before reading, the file's format is checked from its first
bytes, so an unusable file raises a :class:`WeightFileError` that names it and says what it holds
instead of weights (a folder, an empty file, text, an image, a TorchScript program, a truncated or
damaged checkpoint). :class:`UnsafeCheckpointError`, its subclass, refuses a torch file that would
need arbitrary objects unpickled, and names them.
"""

from __future__ import annotations

import json
import os
import pickle
import pickletools
import re
import struct
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from sslkeypoint.atomic import atomic_path

__all__ = [
    "CONTAINER_KEYS",
    "UnsafeCheckpointError",
    "WeightFileError",
    "check_weight_path",
    "load_state_dict_file",
    "read_weight_file",
    "save_state_dict",
]

PathLike = str | os.PathLike[str]

#: Keys whose value is unwrapped when a checkpoint is a container around a state dict, in order.
CONTAINER_KEYS: tuple[str, ...] = ("state_dict", "model_state_dict", "model", "module")


class WeightFileError(ValueError):
    """A file that cannot be used as weights: the message names it and says what it holds.

    Raised for a folder, an empty file, a file in no weight format (text, an image, ...), a
    TorchScript program, a truncated or damaged checkpoint, a file without tensors, or a
    checkpoint of the wrong kind (e.g. a pre-training checkpoint given where a fine-tuned model is
    needed). A missing file raises :class:`FileNotFoundError` instead.

    Args:
        path: The file.
        problem: What is wrong with it, as the end of a sentence that starts with the path.

    Attributes:
        path: The file, as a :class:`~pathlib.Path`.
        problem: What is wrong with it.

    Examples:
        >>> err = WeightFileError("w.pth", "is empty (0 bytes)")
        >>> str(err), isinstance(err, ValueError)
        ('w.pth: is empty (0 bytes)', True)
    """

    def __init__(self, path: PathLike, problem: str) -> None:
        super().__init__(str(path), problem)
        self.path = Path(path)
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


class UnsafeCheckpointError(WeightFileError):
    """A torch file that could only be read by unpickling arbitrary Python objects (refused).

    Unpickling can run code, so such a file is never opened in full. The message names the
    objects the file asks for (:attr:`names`); when one of them runs commands or code (``os.system``,
    ``builtins.eval``, ...) the file is called out as one that would run code on loading.

    Attributes:
        names: The ``module.name`` of each object the file needs beyond tensors and plain
            containers (empty when they could not be listed).

    Examples:
        >>> err = UnsafeCheckpointError("m.pth", "refused")
        >>> isinstance(err, WeightFileError), err.names
        (True, ())
    """

    names: tuple[str, ...] = ()


# --------------------------------------------------------------------------------------------------
# Reading and writing files
# --------------------------------------------------------------------------------------------------

_WEIGHT_FORMATS = "sslkeypoint reads safetensors files and torch checkpoints (torch.save)"

# First bytes of formats that users hand over by mistake, and what to call them.
_OTHER_FORMATS: tuple[tuple[bytes, str], ...] = (
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file (Keras / TensorFlow weights?)"),
    (b"\x93NUMPY", "a numpy .npy array"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GGUF", "a GGUF model file"),
)

# Pickled callables that run commands or arbitrary code when a file is unpickled.
_CODE_MODULES = frozenset(
    {"os", "posix", "nt", "subprocess", "sys", "shutil", "socket", "importlib", "runpy", "pty",
     "code", "codeop", "ctypes", "pickle", "_pickle", "marshal", "webbrowser", "multiprocessing",
     "pdb", "timeit", "platform", "commands", "asyncio", "threading"}
)
_CODE_BUILTINS = frozenset(
    {"eval", "exec", "compile", "__import__", "getattr", "setattr", "delattr", "open", "globals",
     "locals", "vars", "breakpoint", "input", "execfile", "apply"}
)


def _runs_code(name: str) -> bool:
    """Whether the pickled global ``module.name`` runs commands or code when called."""
    module, _, attr = name.rpartition(".")
    if module in ("builtins", "__builtin__"):
        return attr in _CODE_BUILTINS
    return module.split(".")[0] in _CODE_MODULES


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _last_line(err: BaseException) -> str:
    """The most specific line of torch's unpickling message (its advice lines are left out)."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip() and "weights_only" not in ln]
    return lines[-1] if lines else type(err).__name__


def _describe_bytes(head: bytes) -> str:
    """What the first bytes of a file that is in no weight format look like."""
    for magic, what in _OTHER_FORMATS:
        if head.startswith(magic):
            return what
    text = ""
    for cut in range(4):  # the last character may be cut in the middle of its bytes
        try:
            text = head[: len(head) - cut].decode("utf-8")
            break
        except UnicodeDecodeError:
            continue
    if text.startswith("version https://git-lfs"):
        return "a Git LFS pointer, not the file itself (fetch it with `git lfs pull`)"
    if text and all(c.isprintable() or c in "\t\r\n" for c in text):
        return f"text (it starts with {text[:40]!r})"
    return f"no known weight format (its first bytes are {head[:8].hex(' ')})"


def _safetensors_header_size(head: bytes) -> int | None:
    """The header length a safetensors file starting with ``head`` declares, or ``None``."""
    if len(head) < 9 or head[8:9] != b"{":
        return None
    (n,) = struct.unpack("<Q", head[:8])
    return n if n >= 2 else None


def _is_safetensors(path: Path) -> bool:
    """Whether ``path`` looks like a safetensors file (by its header, else by its extension)."""
    with path.open("rb") as fh:
        head = fh.read(9)
    n = _safetensors_header_size(head)
    if n is not None and n < 100_000_000:
        return True
    return path.suffix == ".safetensors" and not head.startswith(b"PK\x03\x04")


def _check_safetensors(path: Path, size: int) -> None:
    """Refuse a safetensors file whose header or data is cut short or malformed."""
    with path.open("rb") as fh:
        head = fh.read(64)
        n = _safetensors_header_size(head)
        if n is None:
            raise WeightFileError(
                path, f"is named .safetensors but is not one: it holds {_describe_bytes(head)}. {_WEIGHT_FORMATS}"
            )
        if 8 + n > size:
            raise WeightFileError(
                path,
                f"is a truncated safetensors file: its header alone needs {8 + n} bytes, the file has "
                f"{size} (a save or copy that did not finish?)",
            )
        fh.seek(8)
        raw = fh.read(n)
    try:
        header = json.loads(raw)
        ends = [int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"]
    except (ValueError, TypeError, KeyError, IndexError) as err:
        raise WeightFileError(path, f"is a damaged safetensors file: its header is unreadable ({err})") from None
    needed = 8 + n + max(ends, default=0)
    if needed > size:
        raise WeightFileError(
            path,
            f"is a truncated safetensors file: its {len(ends)} tensors need {needed} bytes, the file has "
            f"{size} (a save or copy that did not finish?)",
        )


def _check_torch_zip(path: Path, size: int) -> None:
    """Refuse a zip file that is cut short, is a TorchScript program or is not a torch checkpoint."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except zipfile.BadZipFile:
        raise WeightFileError(
            path,
            f"is a truncated or damaged torch checkpoint: the zip archive's directory at its end is "
            f"missing ({size} bytes; a save or copy that did not finish?)",
        ) from None
    if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
        raise WeightFileError(
            path,
            "is a TorchScript program (torch.jit.save, e.g. an exported submission's model.pt), not a "
            "weight file: run it with torch.jit.load, or use the checkpoint it was exported from",
        )
    if not any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise WeightFileError(
            path, f"is a zip archive but not a torch checkpoint (no data.pkl inside; it holds {shown}). {_WEIGHT_FORMATS}"
        )


# The pickled magic number that opens a torch checkpoint in the format before zip archives.
_LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"
_STRING_OPS = frozenset(
    {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING", "STRING"}
)


def _pickle_globals(fh: Any) -> list[str]:
    """The ``module.name`` globals one pickle (read from ``fh`` up to its STOP) would import.

    A static scan with :mod:`pickletools`: nothing is unpickled. ``STACK_GLOBAL`` names are taken
    from the strings pushed (or fetched from the memo) just before it.

    Raises:
        ValueError: If the pickle is cut short or malformed.
    """
    names: list[str] = []
    strings: list[str] = []
    memo: dict[int, str] = {}
    last: str | None = None
    for op, arg, _ in pickletools.genops(fh):
        index = arg if isinstance(arg, int) else -1
        if op.name in _STRING_OPS:
            last = str(arg)
            strings.append(last)
            continue
        if op.name == "MEMOIZE":  # numbered in order; non-string entries keep the numbering
            memo[len(memo)] = last or ""
        elif op.name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[index] = last or ""
        elif op.name in ("GET", "BINGET", "LONG_BINGET") and memo.get(index):
            strings.append(memo[index])
        elif op.name in ("GLOBAL", "INST"):
            names.append(".".join(str(arg).split(" ", 1)))
        elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
            names.append(f"{strings[-2]}.{strings[-1]}")
        last = None
    return names


def _unsafe_error(path: Path, names: Sequence[str]) -> UnsafeCheckpointError:
    names = sorted(set(names))
    shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
    code = [n for n in names if _runs_code(n)]
    if code:
        problem = (
            f"refused: unpickling this file would call {', '.join(code)}, which runs commands or code "
            "on the machine that loads it. A weight file never needs that: do not open it with "
            "weights_only=False; ask its source for a safetensors file instead"
        )
    else:
        what = f"Python objects ({shown})" if names else "Python objects"
        problem = (
            f"refused for safety: besides tensors it holds {what} that only full unpickling could "
            "rebuild, and unpickling can run code. If you made this file or trust its source, "
            "convert it once to safetensors: `with torch.serialization.safe_globals([<those "
            "classes>]): ckpt = torch.load(path, weights_only=True)`, take its state dict (e.g. "
            "`ckpt['state_dict']`) and write it with `sslkeypoint.weights.save_state_dict(sd, "
            "'weights.safetensors')`"
        )
    error = UnsafeCheckpointError(path, problem)
    error.names = tuple(names)
    return error


def _check_pickle(path: Path, head: bytes, size: int) -> list[str]:
    """Refuse a pickle that is not a complete torch checkpoint (legacy format), naming what it is.

    Returns:
        The globals the checkpoint's pickles import (found without unpickling).
    """
    legacy = head.startswith(_LEGACY_TORCH_MAGIC)
    with path.open("rb") as fh:
        try:
            # Legacy torch files are four pickles (magic number, protocol, system info, object)
            # followed by the tensor data; any other pickle is a single one.
            names = [n for _ in range(4 if legacy else 1) for n in _pickle_globals(fh)]
        except ValueError as err:
            what = "torch checkpoint (the format before zip archives)" if legacy else "Python pickle"
            raise WeightFileError(
                path, f"is a truncated or damaged {what}: {err} ({size} bytes; a save or copy that did not finish?)"
            ) from None
    if legacy:
        return names
    if any(_runs_code(n) for n in names):
        raise _unsafe_error(path, names)
    raise WeightFileError(
        path,
        "is a plain Python pickle (pickle.dump), not a torch checkpoint: it is never unpickled here, "
        "because unpickling can run code. Save tensors with torch.save or "
        "sslkeypoint.weights.save_state_dict instead",
    )


def check_weight_path(path: PathLike) -> Path:
    """``path`` as a :class:`~pathlib.Path` once it is known to be a non-empty file (its content is not read).

    Raises:
        FileNotFoundError: If nothing is at ``path``.
        WeightFileError: If ``path`` is a folder or an empty file.

    Examples:
        >>> import tempfile
        >>> check_weight_path(tempfile.mkdtemp())
        Traceback (most recent call last):
        ...
        sslkeypoint.weights.files.WeightFileError: ...: is a folder, not a weight file: give a file inside it (e.g. model.safetensors or checkpoints/last.ckpt)
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"weight file not found: {p}")
    if p.is_dir():
        raise WeightFileError(p, "is a folder, not a weight file: give a file inside it (e.g. model.safetensors or checkpoints/last.ckpt)")
    if p.stat().st_size == 0:
        raise WeightFileError(p, "is empty (0 bytes): a save or copy that did not finish?")
    return p


def read_weight_file(path: PathLike, map_location: str | torch.device = "cpu") -> Any:
    """Read a weight file safely and say what is wrong when it cannot be used.

    A safetensors file (recognised by its header, or a ``.safetensors`` name) is read with
    safetensors; anything else must be a torch checkpoint and is read with
    ``torch.load(..., weights_only=True)``, which rebuilds only tensors and plain containers.
    Before reading, the file's format is checked from its first bytes, so a file that is not a
    weight file, or is cut short, is named and described instead of failing inside a loader.

    Args:
        path: The file.
        map_location: Device the tensors are loaded onto.

    Returns:
        For a safetensors file, its ``{name: tensor}`` dict; for a torch checkpoint, the object
        saved (usually a dict: a state dict, or a container such as a Lightning checkpoint).

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        UnsafeCheckpointError: If the torch file needs arbitrary objects unpickled; the message
            names them and says whether they would run code.
        WeightFileError: If ``path`` is a folder, is empty, is in no weight format (text, an
            image, a TorchScript program, ...) or is truncated or damaged; the message names the
            file and says what it holds.

    Examples:
        >>> import tempfile, torch
        >>> from pathlib import Path
        >>> folder = Path(tempfile.mkdtemp())
        >>> torch.save({"epoch": 3, "state_dict": {"w": torch.ones(2)}}, folder / "ckpt.pth")
        >>> sorted(read_weight_file(folder / "ckpt.pth"))
        ['epoch', 'state_dict']
        >>> _ = (folder / "notes.pth").write_text("lr = 0.1")
        >>> read_weight_file(folder / "notes.pth")
        Traceback (most recent call last):
        ...
        sslkeypoint.weights.files.WeightFileError: ...notes.pth: is not a weight file: it holds text (it starts with 'lr = 0.1'). sslkeypoint reads safetensors files and torch checkpoints (torch.save)
    """
    p = check_weight_path(path)
    size = p.stat().st_size
    with p.open("rb") as fh:
        head = fh.read(64)
    if _is_safetensors(p):
        _check_safetensors(p, size)
        from safetensors.torch import load_file

        device = str(map_location) if isinstance(map_location, torch.device) else map_location
        try:
            return load_file(str(p), device=device)
        except Exception as err:
            raise WeightFileError(p, f"is a damaged safetensors file: {_first_line(err)}") from err
    legacy_globals: list[str] | None = None
    if head.startswith(b"PK\x03\x04"):
        _check_torch_zip(p, size)
    elif head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        legacy_globals = _check_pickle(p, head, size)
    else:
        raise WeightFileError(p, f"is not a weight file: it holds {_describe_bytes(head)}. {_WEIGHT_FORMATS}")
    try:
        # A file object, not the path: torch.load would dispatch on a ".safetensors" name.
        with p.open("rb") as fh:
            return torch.load(fh, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if legacy_globals is None:
            try:
                names = list(torch.serialization.get_unsafe_globals_in_checkpoint(str(p)))
            except Exception:  # a damaged data.pkl: the unpickler's message names what it met
                names = re.findall(r"GLOBAL ([\w.]+)", str(err))[:1]
        else:  # the legacy format (checked complete above): the unpickler names the first refused one
            names = [n for n in legacy_globals if _runs_code(n)] or re.findall(r"GLOBAL ([\w.]+)", str(err))[:1]
        if names:
            raise _unsafe_error(p, names) from None
        raise WeightFileError(p, f"is a damaged torch checkpoint: its content cannot be unpickled ({_last_line(err)})") from None
    except EOFError:
        raise WeightFileError(p, f"is a truncated torch checkpoint: it ends early ({size} bytes; a save or copy that did not finish?)") from None
    except Exception as err:
        raise WeightFileError(p, f"is a damaged torch checkpoint: {type(err).__name__}: {_first_line(err)}") from err


def _unwrap(obj: object, path: Path) -> dict[str, Tensor]:
    """Descend through checkpoint containers to the state dict and keep its tensors."""
    while isinstance(obj, Mapping):
        inner = next((obj[k] for k in CONTAINER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, Mapping):
        raise WeightFileError(
            path, f"holds a {type(obj).__name__}, not a state dict (a mapping of names to tensors)"
        )
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, Tensor)}
    if not tensors:
        raise WeightFileError(
            path,
            f"no tensors found; top-level keys are {sorted(map(str, obj))[:10]} "
            f"(containers tried: {', '.join(CONTAINER_KEYS)})",
        )
    return tensors


def load_state_dict_file(path: PathLike, map_location: str | torch.device = "cpu") -> dict[str, Tensor]:
    """Read a state dict from a safetensors or torch file without unpickling arbitrary objects.

    The file is read by :func:`read_weight_file`: ``.safetensors`` files (recognised by extension
    or header) with safetensors, anything else with ``torch.load(..., weights_only=True)``. Common
    containers are unwrapped: the values of ``state_dict`` (Lightning checkpoints),
    ``model_state_dict``, ``model`` and ``module``, repeatedly. Entries that are not tensors (epoch
    counters, hyper-parameters) are dropped.

    Args:
        path: The weight file.
        map_location: Device the tensors are loaded onto.

    Returns:
        A flat ``{name: tensor}`` dict.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        UnsafeCheckpointError: If the file needs arbitrary unpickling (refused for safety).
        WeightFileError: If the file is a folder, empty, in no weight format, truncated or
            damaged, or holds no tensors (the message names the file and what it holds).

    Examples:
        >>> import tempfile, torch
        >>> from pathlib import Path
        >>> f = Path(tempfile.mkdtemp()) / "ckpt.pth"
        >>> torch.save({"epoch": 3, "state_dict": {"w": torch.ones(2)}}, f)
        >>> load_state_dict_file(f)
        {'w': tensor([1., 1.])}
    """
    p = Path(path)
    return _unwrap(read_weight_file(p, map_location), p)


def save_state_dict(
    state_dict: Mapping[str, Tensor] | nn.Module,
    path: PathLike,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Write a state dict (or a module's) to a safetensors file.

    Tensors are detached, moved to the CPU and saved as contiguous clones, so views and tensors that
    share storage (tied weights) are written as independent tensors. Parent folders are created.
    The file is replaced atomically (:func:`~sslkeypoint.atomic.atomic_path`): a full disk or an
    interruption leaves the previous file, never a cut-short one.

    Args:
        state_dict: A ``{name: tensor}`` mapping or a module whose ``state_dict()`` is saved.
        path: Destination file (conventionally ``*.safetensors``).
        metadata: Optional string-to-string metadata stored in the header.

    Returns:
        The path written.

    Raises:
        TypeError: If a value is not a tensor or a metadata entry is not a string.
        OSError: If the file cannot be written (a full disk: ``errno.ENOSPC``, naming the file).

    Examples:
        >>> import tempfile, torch
        >>> from pathlib import Path
        >>> f = save_state_dict(torch.nn.Linear(2, 1), Path(tempfile.mkdtemp()) / "lin.safetensors")
        >>> sorted(load_state_dict_file(f))
        ['bias', 'weight']
    """
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    sd = state_dict.state_dict() if isinstance(state_dict, nn.Module) else state_dict
    tensors: dict[str, Tensor] = {}
    for name, value in sd.items():
        if not isinstance(value, Tensor):
            raise TypeError(f"state dict entry {name!r} is a {type(value).__name__}, not a tensor")
        tensors[str(name)] = value.detach().to("cpu").contiguous().clone()
    meta: dict[str, str] | None = None
    if metadata is not None:
        meta = {}
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError(f"metadata must map str to str; got {k!r}: {type(v).__name__}")
            meta[k] = v
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=meta)
    except SafetensorError as exc:  # a full disk is "I/O error: ... (os error 28)": an OSError, as elsewhere
        found = re.search(r"os error (\d+)", str(exc))
        if found is None:
            raise
        code = int(found.group(1))
        raise OSError(code, os.strerror(code), str(path)) from exc
    return path



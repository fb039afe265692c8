"""The metadata of a safetensors weight file (what wrote it, which network it holds)."""

from __future__ import annotations

from os import PathLike

from sslkeypoint.weights.files import WeightFileError

__all__ = ["weight_file_metadata"]


def weight_file_metadata(path: str | PathLike[str]) -> dict[str, str]:
    """The string metadata of a safetensors file (empty for a file without any).

    Raises:
        WeightFileError: If the file is not a readable safetensors file.
    """
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return dict(handle.metadata() or {})
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise WeightFileError(path, f"not a readable safetensors file ({exc})") from exc

"""Which SGLang releases this plugin supports, read without importing SGLang.

Importing `sglang` is slow and, on a host without an NVIDIA driver, may need the CPU harness first,
so the version comes from the installed distribution's metadata.
"""

from __future__ import annotations

from importlib import metadata

from dflash_sglang.errors import UserError

SUPPORTED_SGLANG_VERSIONS = ("0.5.23",)


def installed_sglang_version() -> str | None:
    try:
        return metadata.version("sglang")
    except metadata.PackageNotFoundError:
        return None


def unsupported_reason(version: str | None) -> str | None:
    """None when `version` is supported, else a one-line reason."""
    supported = ", ".join(SUPPORTED_SGLANG_VERSIONS)
    if version is None:
        return f"SGLang is not installed; dflash-sglang needs sglang=={supported}"
    if version not in SUPPORTED_SGLANG_VERSIONS:
        return f"SGLang {version} is installed; dflash-sglang supports only sglang=={supported}"
    return None


def require_supported_sglang() -> str:
    version = installed_sglang_version()
    reason = unsupported_reason(version)
    if reason is not None:
        raise UserError(reason)
    return version

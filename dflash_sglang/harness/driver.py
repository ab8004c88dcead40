"""Is a real NVIDIA driver present? The CPU harness must never be active where one is."""

from __future__ import annotations

import os
import subprocess

_NVIDIA_PROC = "/proc/driver/nvidia/version"


def has_nvidia_driver() -> bool:
    """True when the kernel driver is loaded or the loader knows a system `libcuda.so.1`.

    `ldconfig -p` lists only system library paths, never `LD_LIBRARY_PATH`, so our own stub
    (which lives on `LD_LIBRARY_PATH`) is not mistaken for a driver.
    """
    if os.path.exists(_NVIDIA_PROC):
        return True
    try:
        listing = subprocess.run(
            ["ldconfig", "-p"], capture_output=True, text=True, check=False, timeout=10
        ).stdout
    except FileNotFoundError:
        for path in ("/sbin/ldconfig", "/usr/sbin/ldconfig"):
            if os.path.exists(path):
                listing = subprocess.run(
                    [path, "-p"], capture_output=True, text=True, check=False, timeout=10
                ).stdout
                break
        else:
            return False
    return any(line.strip().startswith("libcuda.so.1 ") for line in listing.splitlines())

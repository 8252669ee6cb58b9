"""Where llama-server put the model, from what it logged when it started: the proof a GPU host serves from its GPU.

A Vulkan build that finds no device it will use runs every layer on the CPU and serves chats all the same, only
slowly; so does one that finds Mesa's CPU driver where a GPU was meant, or that leaves layers behind. The lines read
are the pinned build's own (libllama and libllama-common of llama-cpp-python 0.3.36; ggml-vulkan's from upstream):

    src/llama.cpp          "%s: using device %s (%s) (%s) - %zu MiB free"  (name, description, device id)
    src/llama-model.cpp    "%s: offloaded %d/%d layers to GPU"             (the output layer counts as one)
    ggml-vulkan.cpp        "ggml_vulkan: No devices found."
    common/arg.cpp         "warning: no usable GPU found, --gpu-layers option will be ignored"
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from roles.model_server.settings import LAVAPIPE, RADV

# What the journal is filtered for on the host (grep -F): everything else is the chats' log.
MARKERS = (": using device ", " layers to GPU", "ggml_vulkan: No devices found", "no usable GPU found")
# The description may hold parentheses of its own ("llvmpipe (LLVM 19.1.7, 256 bits)"); the device id holds none.
USING_DEVICE = re.compile(r": using device (\S+) \((.*)\) \(([^()]*)\) - \d+ MiB free")
OFFLOADED = re.compile(r": offloaded (\d+)/(\d+) layers to GPU")
# How each driver names its device: RADV appends "(RADV <chip>)" to the GPU's name; lavapipe calls itself llvmpipe.
DEVICE_NAMES = {RADV: "RADV", LAVAPIPE: "llvmpipe"}
# Where to look when no device was found, by driver.
NO_DEVICE_CAUSES = {
    RADV: "is the GPU's render node there (/dev/dri/renderD*: firmware-amd-graphics and a kernel that knows the "
    "chip) and open to the unit (SupplementaryGroups=render, DeviceAllow=char-drm rw)?",
    LAVAPIPE: "is mesa-vulkan-drivers installed, and GGML_VK_VISIBLE_DEVICES=0 in the server's settings file "
    "(llama.cpp skips a CPU-type device otherwise)?",
}


@dataclass(frozen=True)
class Startup:
    """What one start of llama-server logged about its devices."""

    devices: tuple[tuple[str, str], ...]  # (device, its description) the model was given
    offloaded: tuple[int, int] | None  # (layers on the GPU, layers in all), None when not logged
    no_device: bool  # the Vulkan backend found no device, or the server no GPU, to use

    def summary(self) -> str:
        names = ", ".join(f"{device} ({description})" for device, description in self.devices)
        on, total = self.offloaded or (0, 0)
        return f"{on} of {total} layers on {names or 'no device'}"


def read_startup_log(lines: Iterable[str]) -> Startup:
    devices, offloaded, no_device = [], None, False
    for line in lines:
        if using := USING_DEVICE.search(line):
            devices.append((using[1], using[2]))
        elif counted := OFFLOADED.search(line):
            offloaded = (int(counted[1]), int(counted[2]))
        elif any(marker in line for marker in MARKERS[2:]):
            no_device = True
    return Startup(tuple(devices), offloaded, no_device)


def offload_problem(startup: Startup, driver: str) -> str | None:
    """Why the model does not run wholly on a Vulkan device of ``driver``, or None when it does."""
    if startup == Startup((), None, False):
        return (
            "nothing llama-server logged in its current run says where the model went (not running, or its start "
            "is no longer in the journal): restart it and deploy again"
        )
    if startup.no_device or not startup.devices:
        said = "found no Vulkan device to use" if startup.no_device else "named no device the model went to"
        return f"llama-server {said}, so it runs on the CPU: {NO_DEVICE_CAUSES[driver]}"
    for device, text in startup.devices:
        if not device.startswith("Vulkan") or DEVICE_NAMES[driver] not in text:
            return (
                f"llama-server put the model on {device} ({text}), not on the {driver} device that "
                f"model_server_vulkan_driver names: {NO_DEVICE_CAUSES[driver]}"
            )
    if startup.offloaded is None:
        return 'llama-server logged no "offloaded N/M layers to GPU": nothing shows where its layers run'
    if startup.offloaded[0] < startup.offloaded[1]:
        return f"llama-server has {startup.summary()}: the other layers run on the CPU"
    return None

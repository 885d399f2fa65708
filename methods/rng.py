"""Per-device generators of a method: a step draws on the device its tensors live on.

A draw from a CPU generator copied to an accelerator is a host-to-device copy inside the step
(pageable memory: the host waits for it). A method therefore keeps one generator per device,
all seeded alike, and saves / restores their states with its pre-training checkpoint (a state
for a device not used yet is kept until that device's generator is made). ``meta`` has no
generators: draws there use the device's default RNG (``None``), as compiled code does.
"""
from __future__ import annotations

import torch


def device_key(device: torch.device | str) -> str:
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return str(device)


class DeviceGenerators:
    """``get(device)``: the generator seeded ``seed`` on ``device`` (None on ``meta``)."""

    def __init__(self, seed: int):
        self.seed = int(seed)
        self._made: dict[str, torch.Generator] = {}
        self._pending: dict[str, torch.Tensor] = {}

    def get(self, device: torch.device | str) -> torch.Generator | None:
        if torch.device(device).type == "meta":
            return None
        key = device_key(device)
        if key not in self._made:
            gen = torch.Generator(device=key)
            gen.manual_seed(self.seed)
            if key in self._pending:
                gen.set_state(self._pending.pop(key))
            self._made[key] = gen
        return self._made[key]

    def adopt(self, generator: torch.Generator) -> None:
        """Use ``generator`` itself for its own device (a method's existing CPU generator)."""
        self._made[device_key(generator.device)] = generator

    def state(self) -> dict[str, torch.Tensor]:
        return {k: g.get_state() for k, g in self._made.items()}

    def load(self, states: dict[str, torch.Tensor]) -> None:
        for key, value in states.items():
            if key in self._made:
                self._made[key].set_state(value)
            else:
                self._pending[key] = value

"""Device and precision, resolved once per command.

CUDA -> bf16 where the GPU supports it (fp16 otherwise); CPU -> fp32 with `use_cpu`. A preset written for a
GPU therefore still validates and dry-runs on a CPU machine: the precision follows the machine, not the file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class DeviceInfo:
    device: str  # cuda | mps | cpu
    dtype: str  # torch dtype name for loading weights
    n_gpus: int
    bf16: bool
    fp16: bool
    use_cpu: bool
    name: str

    def as_dict(self) -> dict:
        return asdict(self)

    def trainer_flags(self) -> dict:
        """What every TRL config gets from the machine (rlr owns these keys)."""
        return {"use_cpu": self.use_cpu, "bf16": self.bf16, "fp16": self.fp16}


def resolve_device(requested_dtype: str = "auto") -> DeviceInfo:
    import torch

    if torch.cuda.is_available():
        bf16_ok = torch.cuda.is_bf16_supported()
        dtype = requested_dtype if requested_dtype != "auto" else ("bfloat16" if bf16_ok else "float16")
        return DeviceInfo(
            device="cuda",
            dtype=dtype,
            n_gpus=torch.cuda.device_count(),
            bf16=dtype == "bfloat16",
            fp16=dtype == "float16",
            use_cpu=False,
            name=torch.cuda.get_device_name(0),
        )
    # CPU: half precision training is slow and lossy there, so fp32 whatever the preset asked for.
    return DeviceInfo(device="cpu", dtype="float32", n_gpus=0, bf16=False, fp16=False, use_cpu=True, name="cpu")

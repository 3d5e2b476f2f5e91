"""Device names are checked against this machine, with a message saying what it has."""

import pytest
import torch

from paraclip.devices import check_device
from paraclip.errors import ParaclipError


def test_cpu_and_auto_work_everywhere():
    assert check_device("cpu") == torch.device("cpu")
    assert check_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert check_device("auto") == check_device("")


@pytest.mark.parametrize("spec", ["gpu", "cuda:-1", "cuda:x", "meta", "xla", "cpu cpu"])
def test_names_that_are_not_devices(spec):
    with pytest.raises(ParaclipError, match="is not a device name"):
        check_device(spec, "--device")


def test_a_gpu_index_this_machine_lacks(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ParaclipError, match=r"'cuda:3' does not exist: this machine has 1 CUDA GPU \(cuda:0\)"):
        check_device("cuda:3", "--device")
    assert check_device("cuda:0") == torch.device("cuda", 0)


def test_cuda_without_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ParaclipError, match="asks for a CUDA GPU, but torch sees no CUDA GPU"):
        check_device("cuda", "--device")
    assert check_device("auto") == torch.device("cpu")


def test_mps_off_apple(monkeypatch):
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ParaclipError, match="MPS"):
        check_device("mps")

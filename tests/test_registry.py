import pytest

from paraclip.errors import UnknownNameError
from paraclip.registry import Registry


def test_registry_lookup_aliases_and_suggestions():
    reg = Registry("widget")
    reg.register("Alpha", 1, "a")
    reg.register("Beta", 2)
    assert reg.get("alpha") == 1 and reg.get("A") == 1 and "beta" in reg
    assert reg.parse_list("a, beta") == ["Alpha", "Beta"]
    assert reg.parse_list(None) == ["Alpha", "Beta"] and reg.parse_list("all") == ["Alpha", "Beta"]
    with pytest.raises(UnknownNameError, match=r"Unknown widget 'Alpah'\. Did you mean 'Alpha'\?"):
        reg.get("Alpah")
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("alpha", 3)

"""Every app setting is parsed in one place: a bad value is a SettingsError naming the variable."""

from __future__ import annotations

import pytest

from workbench.settings import SETTINGS, SettingsError, check_all, markdown_table, parse_auth, read


@pytest.mark.parametrize("name,value", [
    ("GRADIO_SERVER_PORT", "abc"), ("GRADIO_SERVER_PORT", "70000"), ("GRADIO_SERVER_PORT", "0"),
    ("PARACLIP_APP_MAX_UPLOAD_MB", "-1"), ("PARACLIP_APP_MAX_JOBS", "abc"), ("PARACLIP_APP_MAX_JOBS", "0"),
    ("PARACLIP_APP_PUBLIC", "maybe"), ("PARACLIP_APP_KEEP_JOBS", "2"), ("PARACLIP_APP_AUTH", "alice"),
    ("PARACLIP_APP_AUTH", "alice:pw,bob"), ("PARACLIP_APP_AUTH", ":pw"), ("PARACLIP_APP_AUTH", "alice:"),
    ("PARACLIP_APP_MAX_JOB_MINUTES", "soon"), ("PARACLIP_APP_MAX_CAPTIONS", "١٢"), ("PARACLIP_APP_MAX_UPLOAD_MB", "1e999"),
    ("PARACLIP_APP_MAX_UPLOAD_MB", "nan"),
])
def test_a_bad_value_names_the_setting(name, value):
    with pytest.raises(SettingsError) as info:
        read(name, {name: value})
    assert name in str(info.value) and "expected" in str(info.value)
    if name == "PARACLIP_APP_AUTH":
        assert value not in str(info.value) or value == ":pw" and "(value not shown)" in str(info.value)


def test_defaults_and_good_values():
    values = check_all({})
    assert values["PARACLIP_APP_MAX_JOBS"] == 2 and values["GRADIO_SERVER_PORT"] == 7860
    assert values["PARACLIP_APP_AUTH"] is None and values["PARACLIP_APP_PUBLIC"] is None
    assert read("PARACLIP_APP_MAX_JOBS", {"PARACLIP_APP_MAX_JOBS": " 3 "}) == 3
    assert read("PARACLIP_APP_PUBLIC", {"PARACLIP_APP_PUBLIC": "off"}) is False
    assert parse_auth("alice:p:w,bob:x") == [("alice", "p:w"), ("bob", "x")]


def test_check_all_lists_every_bad_setting():
    with pytest.raises(SettingsError) as info:
        check_all({"PARACLIP_APP_MAX_JOBS": "abc", "GRADIO_SERVER_PORT": "x"})
    assert "PARACLIP_APP_MAX_JOBS" in str(info.value) and "GRADIO_SERVER_PORT" in str(info.value)


def test_the_readme_table_lists_every_setting():
    table = markdown_table()
    assert all(f"`{name}`" in table for name in SETTINGS)


def test_the_app_sets_its_torch_threads_before_serving(monkeypatch):
    import torch

    from workbench.serving import apply_torch_threads

    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("PARACLIP_APP_TORCH_THREADS", "1")
        apply_torch_threads(check_all())
        assert torch.get_num_threads() == 1
        torch.set_num_threads(2)
        monkeypatch.setenv("PARACLIP_APP_TORCH_THREADS", "0")  # 0: torch's own default is left alone
        apply_torch_threads(check_all())
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)

"""Tests never write into the user's real caches (the guard in tests/conftest.py), and every default
cache/app location of the library follows $PARACLIP_CACHE."""

from __future__ import annotations

import os
from pathlib import Path

CONFTEST = Path(__file__).with_name("conftest.py")


def test_every_default_location_is_inside_the_temporary_cache():
    from paraclip.data.images import default_raster_cache
    from paraclip.features import default_cache_root
    from paraclip.jobs import default_app_dir
    from paraclip.miniworld.config import default_root as miniworld_root
    from paraclip.paraphrase.local.pack import llm_cache_dir
    from paraclip.paraphrase.cache import default_cache_path
    from paraclip.paraphrase.local.pack import packs_dir

    cache = Path(os.environ["PARACLIP_CACHE"])
    session_root = Path.home().parent  # conftest.py: <tmp>/paraclip-tests-*/home
    assert session_root.name.startswith("paraclip-tests-") and cache.parent == session_root
    assert "PARACLIP_APP_DIR" not in os.environ
    for path in (default_cache_root(), default_app_dir(), miniworld_root(), default_cache_path(), packs_dir(),
                 default_raster_cache(), llm_cache_dir()):
        assert cache in Path(path).parents, path


def test_the_guard_fails_a_session_that_writes_under_home(pytester):
    pytester.makeconftest(CONFTEST.read_text(encoding="utf-8"))
    pytester.makepyfile(test_writes="""
        import os
        from pathlib import Path

        def test_respects_the_cache_variable():
            Path(os.environ["PARACLIP_CACHE"], "ok.txt").parent.mkdir(parents=True, exist_ok=True)
            Path(os.environ["PARACLIP_CACHE"], "ok.txt").write_text("fine")

        def test_falls_back_to_home():
            leak = Path.home() / ".cache" / "paraclip" / "app" / "jobs.sqlite"
            leak.parent.mkdir(parents=True)
            leak.write_text("oops")
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == 1
    result.assert_outcomes(passed=2)  # both tests pass; the guard fails the session
    result.stdout.fnmatch_lines(["*1 file(s) were written under ~/.cache/paraclip*", "*app/jobs.sqlite*"])


def test_the_guard_passes_a_clean_session(pytester):
    pytester.makeconftest(CONFTEST.read_text(encoding="utf-8"))
    pytester.makepyfile(test_clean="""
        import os
        from pathlib import Path

        def test_writes_only_into_the_cache():
            Path(os.environ["PARACLIP_CACHE"]).mkdir(parents=True, exist_ok=True)
            Path(os.environ["PARACLIP_CACHE"], "x").write_text("fine")
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == 0

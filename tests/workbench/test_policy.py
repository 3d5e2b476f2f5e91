"""The public-mode policy on its own: which paths and specs pass, what error text a visitor sees,
and how sessions follow the default models. (The same attacks over HTTP: test_public_mode.py.)"""

from __future__ import annotations

import pytest

from paraclip.errors import DataError, ParaclipError
from workbench.policy import AccessPolicy, PolicyError, env_list, looks_like_path, public_from_env, user_error

KEY = "sk-FAKE-policy-0123456789"


@pytest.mark.parametrize("env, public", [
    ({}, False), ({"SPACE_ID": "me/app"}, True), ({"PARACLIP_APP_PUBLIC": "1"}, True),
    ({"PARACLIP_APP_PUBLIC": "yes"}, True), ({"SPACE_ID": "me/app", "PARACLIP_APP_PUBLIC": "0"}, False),
    ({"SPACE_ID": "  "}, False),
])
def test_public_mode_switch(monkeypatch, env, public):
    for name in ("SPACE_ID", "PARACLIP_APP_PUBLIC"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert public_from_env() is public


def test_env_list_takes_pathsep_and_commas(monkeypatch):
    monkeypatch.setenv("PARACLIP_APP_DATA_DIRS", "/a:/b, /c,,")
    assert env_list("PARACLIP_APP_DATA_DIRS") == ["/a", "/b", "/c"]


@pytest.fixture
def tree(tmp_path):
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    (allowed / "sub").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.txt").write_text(KEY)
    (allowed / "ok.csv").write_text("original,paraphrase\na,b\n")
    (allowed / "link.csv").symlink_to(outside / "secret.txt")
    (allowed / "sub" / "up").symlink_to(outside, target_is_directory=True)
    return tmp_path, allowed, outside


def test_paths_inside_the_allowed_folders_pass_and_come_back_resolved(tree):
    root, allowed, _ = tree
    policy = AccessPolicy(public=True, roots=(allowed.resolve(),))
    assert policy.check_path(allowed / "ok.csv", "Pairs") == (allowed / "ok.csv").resolve()
    assert policy.check_path(f"{allowed}/sub/../ok.csv", "Pairs") == (allowed / "ok.csv").resolve()


@pytest.mark.parametrize("escape", ["/etc/passwd", "{outside}/secret.txt", "{allowed}/../outside/secret.txt",
                                    "{allowed}/link.csv", "{allowed}/sub/up/secret.txt", "~/.ssh/id_rsa",
                                    "{allowed}2/x.csv"])
def test_escapes_are_refused_without_naming_content(tree, escape):
    root, allowed, outside = tree
    (root / "allowed2").mkdir()  # a sibling whose name starts like the allowed folder's
    policy = AccessPolicy(public=True, roots=(allowed.resolve(),))
    with pytest.raises(PolicyError, match="public") as info:
        policy.check_path(escape.format(allowed=allowed, outside=outside), "Pairs")
    assert KEY not in str(info.value) and str(info.value).startswith("Pairs:")


def test_extra_roots_are_per_call(tree):
    _, allowed, outside = tree
    policy = AccessPolicy(public=True, roots=())
    with pytest.raises(PolicyError):
        policy.check_path(allowed / "ok.csv", "Pairs")
    assert policy.check_path(allowed / "ok.csv", "Pairs", extra_roots=[allowed])


def test_private_mode_refuses_nothing(tree):
    _, _, outside = tree
    policy = AccessPolicy(public=False)
    assert policy.check_path(outside / "secret.txt", "Pairs") == outside / "secret.txt"
    assert policy.check_spec("local-dir:/etc", "Model") == "local-dir:/etc"
    policy.check_url("http://127.0.0.1:8000/v1")
    assert policy.transport(4) is None


@pytest.mark.parametrize("spec", ["ViT-B-32", "hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K", "openai/clip-vit-base-patch32",
                                  "tuxpaint", "all-MiniLM-L6-v2", "openai", None, ""])
def test_names_that_are_not_paths_pass(spec):
    assert AccessPolicy(public=True).check_spec(spec, "Model") == spec


@pytest.mark.parametrize("spec, match", [("/etc/passwd", "public"), ("./secrets", "public"), ("~/x.pt", "public"),
                                         ("local-dir:/etc", "local-dir"), ("file:///etc/passwd", "file"),
                                         ("../x.safetensors", "public")])
def test_specs_that_read_disk_are_checked(spec, match):
    with pytest.raises(PolicyError, match=match):
        AccessPolicy(public=True).check_spec(spec, "Model")


def test_a_relative_name_that_exists_on_disk_is_a_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ViT-B-32").mkdir()
    assert looks_like_path("ViT-B-32") and not looks_like_path("ViT-B-16")


def test_public_urls_pass_the_policy_check(monkeypatch):
    from paraclip.netguard import AddressGuard

    guard = AddressGuard(resolver=lambda host, port: {"api.example": ["93.184.216.34"]}.get(host, ["10.0.0.1"]))
    policy = AccessPolicy(public=True, guard=guard)
    policy.check_url("https://api.example/v1")
    with pytest.raises(PolicyError, match="PARACLIP_APP_ALLOWED_API_HOSTS"):
        policy.check_url("https://intranet.example/v1")
    # the transport a public app's requests go through checks every connection, so a host that resolves to
    # an internal address later (DNS rebinding) is still refused, before any connection is made
    import httpx

    with httpx.Client(transport=policy.transport(4)) as client:
        with pytest.raises(httpx.ConnectError, match="blocked"):
            client.get("http://intranet.example/v1/models")
    assert AccessPolicy(public=False, guard=guard).transport(4) is None  # off public mode: httpx's own


def test_user_error_hides_file_text_and_foreign_exception_details():
    exc = DataError(f"pairs.csv:1: no 'original' field; found OPENAI_API_KEY={KEY}.",
                    file_text=[f"OPENAI_API_KEY={KEY}"])
    assert KEY in str(exc) and KEY in user_error(exc, public=False)
    shown = user_error(exc, public=True)
    assert KEY not in shown and shown == "pairs.csv:1: no 'original' field; found [file content hidden]."
    assert user_error(ParaclipError("plain"), public=True) == "plain"
    assert user_error(RuntimeError(KEY), public=True) == "RuntimeError (the details are in the server log)."
    assert KEY in user_error(RuntimeError(KEY), public=False)
    assert user_error(KeyboardInterrupt("stopped by the user"), public=True) == "stopped."


def test_library_errors_mark_what_they_quote(tmp_path):
    """The readers' messages that quote a file say so, so the app can hide exactly that part."""
    from paraclip.data.galleries import folder_gallery
    from paraclip.data.tables import iter_table
    from paraclip.evaluation.paraphrased import load_pairs

    bad = tmp_path / "k.csv"
    bad.write_text(f"API_KEY={KEY}\nx\n")
    for read in (load_pairs, lambda p: folder_gallery(tmp_path, p)):
        with pytest.raises(DataError) as info:
            read(bad)
        assert KEY in str(info.value) and KEY not in info.value.without_file_text()
    ragged = tmp_path / "r.csv"
    ragged.write_text(f"a,{KEY}\n1,2,3\n")
    with pytest.raises(DataError) as info:
        list(iter_table(ragged))
    assert KEY not in info.value.without_file_text() and "r.csv:2" in info.value.without_file_text()


def test_cli_hides_file_text_when_asked(tmp_path, monkeypatch, capsys):
    from paraclip.cli import main

    bad = tmp_path / "k.csv"
    bad.write_text(f"API_KEY={KEY}\nx\n")
    argv = ["sts", "--model", "paraclip-tiny", "--tasks", str(bad)]
    assert main(argv) == 2
    assert KEY in capsys.readouterr().err  # on the command line the user reads their own file
    monkeypatch.setenv("PARACLIP_HIDE_FILE_TEXT", "1")  # a hosted app's jobs
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert KEY not in err and "k.csv" in err and "file content hidden" in err


def test_sessions_follow_the_defaults_and_never_default_to_a_job():
    from workbench.app import follow

    assert follow(None, "trained", [], ["trained"]) == "trained"
    assert follow("untrained (fallback)", "trained", ["untrained (fallback)"], ["trained"]) == "trained"
    assert follow("ParaCLIP", "baseline", ["baseline", "ParaCLIP"], ["baseline", "ParaCLIP"]) == "ParaCLIP"
    assert follow("job x [1]", "baseline", ["baseline"], ["baseline"]) == "job x [1]"
    assert follow("ViT-B-32@openai", "baseline", ["baseline"], ["baseline"]) == "ViT-B-32@openai"


def test_public_messages_name_no_server_path_and_no_cli_flag():
    from workbench.policy import hide_paths

    text = "cannot read /home/app/.cache/paraclip/app/defaults/manifest.json; pass `--aro-dir` DIR or --k 5"
    shown = hide_paths(text)
    assert "/home/app" not in shown and "manifest.json" in shown
    assert "--aro-dir" not in shown and "--k" not in shown and "“aro dir” setting" in shown
    assert hide_paths("see https://example.org/a/b/c") == "see https://example.org/a/b/c"
    exc = DataError("/srv/data/pairs.csv:2: bad row")
    assert user_error(exc, public=True) == "…/pairs.csv:2: bad row"
    assert user_error(exc, public=False) == str(exc)


def test_a_missing_path_inside_an_allowed_folder_gets_the_refusal_message(tree):
    _, allowed, outside = tree
    policy = AccessPolicy(public=True, roots=(allowed,))
    messages = []
    for path in (allowed / "missing.csv", outside / "secret.txt"):
        with pytest.raises(PolicyError) as info:
            policy.check_path(str(path), "Pairs")
        messages.append(str(info.value).replace(path.name, "NAME"))
    assert messages[0] == messages[1]

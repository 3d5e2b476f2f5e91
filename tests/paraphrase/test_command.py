import json

from paraclip.cli import main


def test_cli_paraphrases_resumes_and_summarises(chat_server, tmp_path, capsys):
    server = chat_server()
    (tmp_path / "captions.txt").write_text("a dog runs on the beach\nx\ntwo cats sleep on a sofa\n")
    (tmp_path / "ids.txt").write_text("10\n11\n12\n")
    argv = ["paraphrase", str(tmp_path / "captions.txt"), "--image-ids", str(tmp_path / "ids.txt"),
            "--out", str(tmp_path / "out.jsonl"), "--backend", "openai", "--model", "mock",
            "--base-url", server.base_url, "--concurrency", "4"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "1 filtered by length" in out and "2/2 records" in out and "2 ok, 0 failed" in out
    recs = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [(r["index"], r["image_id"]) for r in recs] == [(0, "10"), (1, "12")]
    assert main(argv) == 0  # same command again: nothing to do
    assert "(2 from before, 0 new)" in capsys.readouterr().out
    assert server.counts["requests"] == 4


def test_cli_bad_input_is_one_clear_error(tmp_path, capsys):
    (tmp_path / "d.jsonl").write_text('{"caption": "a dog runs"}\n{"caption": \n')
    code = main(["paraphrase", str(tmp_path / "d.jsonl"), "--out", str(tmp_path / "o.jsonl"), "--backend", "openai",
                 "--base-url", "http://127.0.0.1:9/v1"])
    err = capsys.readouterr().err
    assert code == 2 and "d.jsonl:2: malformed JSON" in err and "--skip-bad-lines" in err
    assert "Traceback" not in err


def test_cli_config_file_sets_prompts(chat_server, tmp_path, capsys):
    server = chat_server()
    (tmp_path / "c.txt").write_text("a dog runs on the beach\n")
    (tmp_path / "cfg.yaml").write_text('step1_prompt: "Reword: \\"{}\\""\ntemperature: 0.7\n')
    assert main(["paraphrase", str(tmp_path / "c.txt"), "--out", str(tmp_path / "o.jsonl"), "--backend", "openai",
                 "--base-url", server.base_url, "--config", str(tmp_path / "cfg.yaml"), "--no-cache"]) == 0
    first = server.bodies[0]
    assert first["messages"][0]["content"] == 'Reword: "a dog runs on the beach"' and first["temperature"] == 0.7
    (tmp_path / "bad.yaml").write_text("temprature: 0.7\n")
    assert main(["paraphrase", str(tmp_path / "c.txt"), "--out", str(tmp_path / "o2.jsonl"), "--backend", "openai",
                 "--base-url", server.base_url, "--config", str(tmp_path / "bad.yaml")]) == 2
    assert "Did you mean 'temperature'" in capsys.readouterr().err


def test_cli_prints_the_plan_before_the_run(chat_server, tmp_path, capsys):
    server = chat_server()
    (tmp_path / "c.txt").write_text("a dog runs on the beach\ntwo cats sleep on a sofa\na red car near a wall\n")
    argv = ["paraphrase", str(tmp_path / "c.txt"), "--out", str(tmp_path / "o.jsonl"), "--backend", "openai",
            "--base-url", server.base_url, "--limit", "2"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "2 captions x 2 steps"  # an API backend gives no estimate before it answers
    (tmp_path / "o.jsonl").write_text((tmp_path / "o.jsonl").read_text().splitlines()[0] + "\n")
    assert main(argv[:-2]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "2 captions x 2 steps (1 of 3 already done)"


def test_format_plan_with_an_estimate():
    from paraclip.commands.paraphrase import format_plan

    assert format_plan({"total": 3, "done": 0, "estimate_s": 39.6}) == "3 captions x 2 steps, about 40 s on this machine"

"""``paraclip export``: a checkpoint as an open_clip model folder with a model card, optionally pushed to the hub."""

from __future__ import annotations

import argparse

HELP = ("Export a checkpoint as an open_clip folder (open_clip_config.json, open_clip_model.safetensors, README "
        "model card) that open_clip loads with local-dir:/hf-hub:; optionally push it to the Hugging Face hub.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="checkpoint written by `paraclip train` (final.pt or step-N.pt)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--results", default=None, metavar="DIR",
                        help="a `paraclip evaluate --out` folder: its results and deltas (with CIs) go into the card")
    parser.add_argument("--push-to-hub", default=None, metavar="ORG/REPO",
                        help="upload the folder to this Hugging Face model repo (needs a login or HF_TOKEN)")
    parser.add_argument("--private", action="store_true", help="create the hub repo as private")


def run(args: argparse.Namespace) -> int:
    from paraclip.checks import check_output_dir
    from paraclip.models.export import check_repo_id, export_model, push_folder

    out = check_output_dir(args.out, "--out")  # before any work
    if args.push_to_hub:
        check_repo_id(args.push_to_hub)
    folder = export_model(args.model, out, args.results)
    print(f"wrote {folder} (open_clip_config.json, open_clip_model.safetensors, README.md); "
          f"load it with open_clip.create_model_from_pretrained('local-dir:{folder}')")
    if args.push_to_hub:
        url = push_folder(folder, args.push_to_hub, private=args.private)
        print(f"pushed to https://huggingface.co/{args.push_to_hub} ({url})")
    return 0

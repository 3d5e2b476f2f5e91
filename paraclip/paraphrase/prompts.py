"""Prompt presets: the paper's verbatim prompts, and a few-shot preset for small local models.

A preset is data (two templates, an optional system message, optional few-shot pairs and
the sampling parameters). ``{}`` in a template is replaced by the text to paraphrase, as in
the official script's ``str.format`` call.

``paper`` is taken verbatim from the ParaCLIP release (Kim et al., Findings of EACL 2024;
github.com/dmis-lab/ParaCLIP, ``paraphrasing/call_openai.py``): one user message, no system
prompt, ``temperature=1.0``, ``top_p=0.1``, ``max_tokens=512`` with ``gpt-3.5-turbo-0301``.

``small-model`` is ours, for local models under ~3B parameters: measured on this project's
CPU with Qwen2.5-Coder-1.5B-Instruct, the paper's prompts kept the meaning 95 % of
the time at step 1 but only 45 % at step 2, while an instruction + few-shot prompt at
temperature 0.3 kept ~82 % and reworded ~63 %.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from paraclip.registry import Registry

#: The paper's step-1 and step-2 prompts (verbatim from the official ``call_openai.py``).
PAPER_STEP1 = 'Paraphrase the given caption "{}" concisely while preserving the meaning.'
PAPER_STEP2 = (
    'Paraphrase the given text "{}" concisely while preserving the meaning and avoiding use of existing words.'
)
PAPER_MODEL = "gpt-3.5-turbo-0301"


@dataclass(frozen=True)
class Sampling:
    """Sampling parameters sent with every request (OpenAI chat-completions names)."""

    temperature: float = 1.0
    top_p: float = 0.1
    max_tokens: int = 512

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PromptPreset:
    name: str
    step1: str
    step2: str
    sampling: Sampling
    system: str | None = None
    # (user, assistant) example turns placed before the real request, per step
    few_shot_step1: tuple[tuple[str, str], ...] = ()
    few_shot_step2: tuple[tuple[str, str], ...] = ()
    description: str = ""

    def __post_init__(self):
        for step, template in (("step1", self.step1), ("step2", self.step2)):
            if template.count("{}") != 1:
                raise ValueError(
                    f"prompt preset {self.name!r}: the {step} template must contain '{{}}' exactly once "
                    f"(where the text goes); got {template!r}"
                )

    def messages(self, step: int, text: str) -> list[dict[str, str]]:
        """The chat messages for one request: [system], few-shot turns, then the filled template."""
        template, shots = (self.step1, self.few_shot_step1) if step == 1 else (self.step2, self.few_shot_step2)
        out: list[dict[str, str]] = []
        if self.system:
            out.append({"role": "system", "content": self.system})
        for example_in, example_out in shots:
            out.append({"role": "user", "content": fill(template, example_in)})
            out.append({"role": "assistant", "content": example_out})
        out.append({"role": "user", "content": fill(template, text)})
        return out

    def instructions(self) -> tuple[str, ...]:
        """The fixed texts of the prompt (templates, system message): a reply must not repeat them."""
        return tuple(t for t in (self.step1, self.step2, self.system) if t)

    def with_overrides(self, **changes: Any) -> "PromptPreset":
        """A copy with some fields replaced; ``None`` values are ignored."""
        sampling_keys = {"temperature", "top_p", "max_tokens"}
        sampling = {k: v for k, v in changes.items() if k in sampling_keys and v is not None}
        rest = {k: v for k, v in changes.items() if k not in sampling_keys and v is not None}
        if sampling:
            rest["sampling"] = replace(self.sampling, **sampling)
        return replace(self, **rest) if rest else self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fill(template: str, text: str) -> str:
    """Put ``text`` where ``{}`` is (like the official ``str.format``, but other braces stay literal)."""
    return template.replace("{}", text, 1)


PRESETS: Registry[PromptPreset] = Registry("prompt preset")

PRESETS.register(
    "paper",
    PromptPreset(
        name="paper",
        step1=PAPER_STEP1,
        step2=PAPER_STEP2,
        sampling=Sampling(temperature=1.0, top_p=0.1, max_tokens=512),
        description=f"Verbatim prompts and sampling of the ParaCLIP release (default for API models), written for the "
                    f"paper's {PAPER_MODEL} (retired by OpenAI); the openai backend's default model replaces it: "
                    "gpt-3.5-turbo, the current snapshot of the same family (--model picks another).",
    ),
)

_SMALL_SYSTEM = (
    "You rewrite image captions. Reply with exactly one short sentence that describes the same picture "
    "with the same objects, colours, numbers and positions, using different words. Reply with the "
    "rewritten sentence only: no quotes, no explanations."
)

PRESETS.register(
    "small-model",
    PromptPreset(
        name="small-model",
        step1="Rewrite this caption: {}",
        step2="Rewrite this sentence using different words than it uses, keeping the meaning: {}",
        system=_SMALL_SYSTEM,
        few_shot_step1=(
            ("a man riding a bike down a city street", "A person cycles along an urban road."),
            ("two cats sleeping on a red sofa", "A pair of cats naps on a red couch."),
        ),
        few_shot_step2=(
            ("A person cycles along an urban road.", "Someone pedals through town on two wheels."),
            ("A pair of cats naps on a red couch.", "Two felines doze on a crimson settee."),
        ),
        sampling=Sampling(temperature=0.3, top_p=0.9, max_tokens=48),
        description="Instruction + few-shot prompts for local models under ~3B parameters (ours, not the paper's).",
    ),
    "small",
)

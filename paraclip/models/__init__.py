"""Model layer: one :class:`Encoder` interface over open_clip, transformers CLIP and sentence-transformers."""

from paraclip.models.base import Encoder, default_device
from paraclip.models.loading import MODEL_SOURCES, load_encoder, packaged_minilm_dir, register_project_configs

__all__ = ["Encoder", "MODEL_SOURCES", "default_device", "load_encoder", "packaged_minilm_dir", "register_project_configs"]

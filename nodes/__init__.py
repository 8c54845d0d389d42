"""ComfyUI nodes for StyleGAN-V: thin adapters from ComfyUI's types to the stylegan_v library.

Only ComfyUI imports this package (relatively, from the pack's root __init__.py, because
ComfyUI owns the top-level name `nodes`). Everything here may import comfy / comfy_api.
"""

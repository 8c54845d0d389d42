"""StyleGAN-V trainer and its command-line tools (run from a checkout: `python -m training.<tool>`).

Data side: `procedural` (synthetic videos), `prepare` (videos/frames -> layout),
`dataset` (reader + sparse frame sampling), `augment` (ADA pipe + controller).
"""

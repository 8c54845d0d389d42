"""Full-size presets have exactly the original's parameters (counts measured on the original code);
the layout both loaders check against is what the networks hold."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from stylegan_v import Discriminator, Generator, ModelConfig, preset
from stylegan_v.layout import build_network, layout, network_layout


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name,g_params,g_keys,d_params,d_keys,num_ws", [
    ("ffs256", 32_105_941, 115, 25_333_568, 72, 14),
    ("sky256", 32_105_941, 115, 25_333_568, 72, 14),
    ("mead1024", 38_444_283, None, None, None, 18),
])
def test_original_sizes(name, g_params, g_keys, d_params, d_keys, num_ws):
    cfg = preset(name)
    with torch.device("meta"):  # shapes only, no memory
        G, D = Generator(cfg.generator), Discriminator(cfg.discriminator)
    assert _count(G) == g_params
    assert G.num_ws == num_ws == cfg.generator.num_ws
    if g_keys is not None:
        assert len(G.state_dict()) == g_keys
        assert _count(D) == d_params and len(D.state_dict()) == d_keys


def test_conditional_shapes():
    cfg = preset("mead1024")
    with torch.device("meta"):
        G, D = Generator(cfg.generator), Discriminator(cfg.discriminator)
    sd = G.state_dict()
    assert sd["mapping.embed.weight"].shape == (512, 77)
    assert sd["mapping.fc0.weight"].shape == (512, 1024)
    assert sd["synthesis.motion_encoder.conv.0.weight"].shape == (512, 589, 11)
    assert D.state_dict()["mapping.embed.weight"].shape == (512, 77 + 552)


def test_sky_periods_follow_motion_distance():
    enc_cfg = preset("sky256").generator
    assert enc_cfg.motion_z_distance == 256 and enc_cfg.min_period_len == 256


def test_two_frame_discriminator():
    cfg = replace(preset("ffs256").discriminator, num_frames=2)
    with torch.device("meta"):
        D = Discriminator(cfg)
    sd = D.state_dict()
    assert sd["b16.conv0.weight"].shape == (512, 512, 3, 3)
    assert sd["mapping.embed.weight"].shape == (512, 276)


def test_conditional_generator_runs_and_uses_the_class():
    from stylegan_v import render as R

    base = preset("tiny32")
    cfg = replace(base.generator, c_dim=5)
    torch.manual_seed(0)
    G = Generator(cfg).eval()
    ws = R.sample_content(G, seed=0, batch_size=2, class_index=3)
    c3 = R.class_labels(G, 0, 2, class_index=3)
    c1 = R.class_labels(G, 0, 2, class_index=1)
    t = R.timestamps(3, 25, 25)
    a = R.render(G, ws, R.MotionSeed(0, 2), t, c=c3)
    b = R.render(G, ws, R.MotionSeed(0, 2), t, c=c1)
    assert a.shape == (2, 3, 3, 32, 32) and not torch.allclose(a, b)  # the class enters the motion too
    with pytest.raises(ValueError, match="class-conditional"):
        R.render(G, ws, R.MotionSeed(0, 2), t)
    with pytest.raises(ValueError, match="class_index must be in 0..4"):
        R.class_labels(G, 0, 1, class_index=5)


_TWO_FRAMES_UNIFORM = replace(preset("tiny32"), discriminator=replace(
    preset("tiny32").discriminator, num_frames=2, sampling_type="uniform", max_num_frames=300))


@pytest.mark.parametrize("config", [preset("tiny32"), preset("sky256"), preset("mead1024"), _TWO_FRAMES_UNIFORM],
                         ids=["tiny32", "sky256", "mead1024", "two_frames_uniform"])
@pytest.mark.parametrize("net", ["G_ema", "D"])
def test_layout_is_what_the_network_holds(config: ModelConfig, net: str):
    with torch.random.fork_rng():
        built = build_network(net, config)  # on the CPU, buffers with their real values
    state = built.state_dict()
    expected = layout(net, config)
    assert list(expected.shapes.items()) == [(k, tuple(v.shape)) for k, v in state.items()]
    # Every persistent buffer but the learned W average has a defined value, the one the module creates.
    buffers = [k for k, _ in built.named_buffers() if k in state]
    assert list(expected.defined) == [k for k in buffers if not k.endswith(".w_avg")]
    assert expected.defined
    for key, value in expected.defined.items():
        assert value.device.type == "cpu" and torch.equal(value, state[key]), key


def test_layout_refuses_a_buffer_it_cannot_define():
    config = preset("tiny32")
    with torch.device("meta"):
        net = build_network("D", config)
    net.b4.register_buffer("mystery", torch.zeros(3))
    with pytest.raises(NotImplementedError, match="mystery"):
        network_layout(net, config)

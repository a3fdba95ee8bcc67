"""Multi-process launch through accelerate: command construction and world-size checks (fast parts)."""

from __future__ import annotations

import sys

from rlr.launch import launch_command, strip_launch_flags


def test_strip_launch_flags():
    argv = ["train-rl", "x.yaml", "--num-processes", "2", "--accelerate-config=zero3", "a.b=1", "--json"]
    assert strip_launch_flags(argv) == ["train-rl", "x.yaml", "a.b=1", "--json"]


def test_launch_command_uses_accelerate_and_shipped_configs():
    cmd = launch_command(["sft", "x.yaml", "--num-processes", "8", "--accelerate-config", "zero3"], 8, "zero3")
    assert cmd[:3] == [sys.executable, "-m", "accelerate.commands.launch"]
    assert cmd[cmd.index("--num_processes") + 1] == "8"
    assert cmd[cmd.index("--config_file") + 1].endswith("presets/accelerate/zero3.yaml")
    assert cmd[-4:] == ["-m", "rlr", "sft", "x.yaml"]
    assert cmd[cmd.index("--main_process_port") + 1] == "0"  # a free port: two runs on one machine do not collide


def test_a_config_that_names_its_port_or_several_machines_keeps_it(tmp_path):
    fixed = tmp_path / "fixed.yaml"
    fixed.write_text("distributed_type: MULTI_GPU\nnum_machines: 1\nmain_process_port: 29511\n")
    nodes = tmp_path / "nodes.yaml"
    nodes.write_text("distributed_type: MULTI_GPU\nnum_machines: 2\nmachine_rank: 0\n")
    for config in (fixed, nodes):
        assert "--main_process_port" not in launch_command(["sft", "x.yaml"], 2, str(config))
    assert "--main_process_port" in launch_command(["sft", "x.yaml"], 2, None)


def test_world_size_dependent_batch_is_checked_before_launch(cli, make_preset):
    p = make_preset(rl={"trainer": {"per_device_train_batch_size": 3, "num_generations": 4}})
    r = cli("train-rl", p, "--num-processes", "2")
    assert r.code == 2
    assert "with 2 processes the global generation batch is 6" in r.stderr and "num_generations 4" in r.stderr


def test_unknown_accelerate_config(cli, make_preset):
    r = cli("sft", make_preset(), "--num-processes", "2", "--accelerate-config", "zero9")
    assert r.code == 2 and "shipped: ddp, fsdp, zero2, zero3" in r.stderr

"""plummer.hardware: presets, derived quantities, TOML round trip and every bad-input path."""

from __future__ import annotations

import dataclasses
import math

import pytest

from plummer.errors import SpecError
from plummer.hardware import (
    CALIBRATABLE,
    HardwareSpec,
    hardware_presets,
    load_hardware,
    save_hardware,
)

FIELDS = dataclasses.fields(HardwareSpec)

# Parameters no public source gives (the issue names alpha, beta, the FMA rate and the
# overheads); the spec may add more overheads, so this is the least the presets must mark.
UNPUBLISHED_AT_LEAST = {"alpha", "beta", "fma_per_cycle", "step_overhead_cycles",
                        "loop_overhead_cycles"}

# Published constants (DESIGN.md section 1), written out independently of the preset files.
PUBLISHED = {
    "wse2": dict(
        fabric_width=757, fabric_height=996, mesh_width=757, mesh_height=996,
        memory_bytes=48 * 1024, dtype_bytes=2, colors=24, reserved_colors=3,
        max_routes_per_core=2**5, link_bytes_per_cycle=4.0, clock_ghz=1.1, input_queues=None,
        wire_bytes_per_element=4,  # not published: one fp16 per 32-bit wavelet, as measured
    ),
    "wse3": dict(
        fabric_width=762, fabric_height=1172, mesh_width=762, mesh_height=1172,
        memory_bytes=48 * 1024, dtype_bytes=2, colors=24, reserved_colors=3,
        max_routes_per_core=2**5, link_bytes_per_cycle=4.0, clock_ghz=1.1, input_queues=8,
        wire_bytes_per_element=4,
    ),
}

# Counts and sizes (integers >= 1) and rates (numbers), as the spec declares them.
INT_FIELDS = [fl.name for fl in FIELDS if fl.type == "int" and fl.name != "reserved_colors"]
FLOAT_FIELDS = [fl.name for fl in FIELDS if fl.type == "float"]
STRICT_POSITIVE_NUMBERS = ["alpha", "link_bytes_per_cycle", "fma_per_cycle", "clock_ghz"]
NON_NEGATIVE_NUMBERS = [n for n in FLOAT_FIELDS if n not in STRICT_POSITIVE_NUMBERS]


def test_field_lists_cover_the_issue():
    assert {"fabric_width", "fabric_height", "mesh_width", "mesh_height", "memory_bytes",
            "dtype_bytes", "colors", "max_routes_per_core"} <= set(INT_FIELDS)
    assert {"beta", "step_overhead_cycles", "loop_overhead_cycles"} <= set(NON_NEGATIVE_NUMBERS)
    assert set(STRICT_POSITIVE_NUMBERS) <= set(FLOAT_FIELDS)


def small(**changes) -> dict:
    """A valid, small hardware mapping (a 4x4 mesh on an 8x8 fabric) with ``changes``.

    Starts from the generic preset's fields so that every required field is present.
    """
    data = load_hardware("generic-mesh").to_dict()
    data.update(
        name="tiny", fabric_width=8, fabric_height=8, mesh_width=4, mesh_height=4,
        memory_bytes=1024, dtype_bytes=2, wire_bytes_per_element=2, colors=10,
        reserved_colors=2, max_routes_per_core=32, alpha=1.5, beta=3.0,
        link_bytes_per_cycle=4.0, fma_per_cycle=2.0, clock_ghz=1.0, input_queues=None,
        description="",
    )
    data.update(changes)
    return data


# ------------------------------------------------------------------- presets
def test_presets_listed():
    assert {"wse2", "wse3", "generic-mesh"} <= set(hardware_presets())


def test_generic_preset_is_uncalibrated():
    spec = load_hardware("generic-mesh")
    assert isinstance(spec, HardwareSpec) and spec.name == "generic-mesh"
    # every unpublished parameter is marked as an uncalibrated default
    assert set(spec.uncalibrated) == set(CALIBRATABLE) and isinstance(spec.uncalibrated, tuple)
    assert "uncalibrated" in spec.calibration and spec.fitted_on == ()


def test_wse2_says_what_it_fitted_on_wse2_data_and_what_it_did_not():
    spec = load_hardware("wse2")
    fitted = set(CALIBRATABLE) - set(spec.uncalibrated)
    assert fitted == {"beta", "fma_per_cycle"} and len(spec.fitted_on) == 6
    assert "alpha" in spec.uncalibrated  # held at one cycle per hop, not fitted


def test_calibratable_names_are_float_fields():
    assert UNPUBLISHED_AT_LEAST <= set(CALIBRATABLE)
    assert set(CALIBRATABLE) <= set(FLOAT_FIELDS)
    assert not {"mesh_width", "memory_bytes", "colors", "clock_ghz"} & set(CALIBRATABLE)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_preset_published_constants(name):
    spec = load_hardware(name)
    for field, value in PUBLISHED[name].items():
        assert getattr(spec, field) == value, field


def test_wse2_derived():
    spec = load_hardware("wse2")
    assert spec.route_budget == 21  # 24 colors - 3 reserved, below the 32 header codes
    assert spec.cores == 753_972  # 757 * 996
    assert spec.memory_total_bytes == 37_059_231_744  # 753,972 * 49,152
    assert spec.link_elements_per_cycle == 1.0  # 4-byte wavelet / 4 wire bytes per fp16
    assert spec.peak_flops == pytest.approx(2 * spec.fma_per_cycle * 753_972 * 1.1e9)  # 1 FMA = 2 FLOPs


def test_wse3_derived():
    spec = load_hardware("wse3")
    assert spec.route_budget == 21
    assert spec.cores == 893_064  # 762 * 1172
    assert spec.memory_total_bytes == 43_895_881_728  # 893,064 * 49,152
    assert spec.link_elements_per_cycle == 1.0
    assert spec.peak_flops == pytest.approx(2 * spec.fma_per_cycle * 893_064 * 1.1e9)


def test_generic_mesh_derived():
    spec = load_hardware("generic-mesh")
    assert spec.cores == 256 * 256
    assert spec.route_budget == 16  # 16 colors, none reserved, 16 routes
    assert spec.memory_total_bytes == 65_536 * 65_536


def test_derived_dict_matches_properties():
    spec = HardwareSpec(**small())
    assert spec.derived() == {
        "cores": 16,
        "route_budget": 8,
        "memory_total_bytes": 16 * 1024,
        "link_elements_per_cycle": 2.0,
        "peak_flops": 2 * 2.0 * 16 * 1.0e9,
    }


def test_route_budget_limited_by_routes_per_core():
    few_routes = HardwareSpec(**small(colors=24, reserved_colors=3, max_routes_per_core=5))
    many_routes = HardwareSpec(**small(colors=24, reserved_colors=3, max_routes_per_core=40))
    assert few_routes.route_budget == 5
    assert many_routes.route_budget == 21


def test_link_elements_depend_on_wire_bytes():
    assert HardwareSpec(**small(wire_bytes_per_element=4)).link_elements_per_cycle == 1.0
    assert HardwareSpec(**small(wire_bytes_per_element=1)).link_elements_per_cycle == 4.0
    assert HardwareSpec(**small(link_bytes_per_cycle=8.0)).link_elements_per_cycle == 4.0


def test_spec_is_immutable():
    spec = load_hardware("wse2")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.mesh_width = 10  # type: ignore[misc]


def test_with_mesh_within_fabric():
    spec = load_hardware("wse2").with_mesh(750, 750)
    assert (spec.mesh_width, spec.mesh_height, spec.cores) == (750, 750, 562_500)
    assert spec.fabric_width == 757
    # the original is untouched
    assert load_hardware("wse2").mesh_width == 757


def test_replace_changes_one_field():
    spec = load_hardware("wse3").replace(alpha=2.5)
    assert spec.alpha == 2.5
    assert spec.beta == load_hardware("wse3").beta


# ----------------------------------------------------------------- round trip
@pytest.mark.parametrize("name", ["wse2", "wse3", "generic-mesh"])
def test_toml_round_trip_presets(name, tmp_path):
    spec = load_hardware(name)
    path = tmp_path / f"{name}.toml"
    save_hardware(spec, path)
    again = load_hardware(path)
    assert again == spec
    assert again.to_dict() == spec.to_dict()


def test_toml_round_trip_every_field_changed(tmp_path):
    spec = HardwareSpec(
        **small(
            input_queues=6,
            uncalibrated=("beta",),
            calibration='fit on "run 7"\\',
            description="my chip\nsecond line",
        )
    )
    path = tmp_path / "mine.toml"
    save_hardware(spec, path, header="a header\nover two lines")
    text = path.read_text()
    assert text.startswith("# a header\n# over two lines\n")
    again = load_hardware(str(path))
    assert again == spec
    assert again.input_queues == 6
    assert again.uncalibrated == ("beta",)
    assert again.description == "my chip\nsecond line"
    assert again.calibration == 'fit on "run 7"\\'


def test_toml_round_trip_fully_calibrated(tmp_path):
    spec = HardwareSpec(**small(uncalibrated=(), calibration="fit on WSE-3 cycles"))
    assert spec.uncalibrated == ()
    save_hardware(spec, tmp_path / "cal.toml")
    assert load_hardware(tmp_path / "cal.toml").uncalibrated == ()


def test_user_toml_with_defaults_omitted(tmp_path):
    path = tmp_path / "hw.toml"
    save_hardware(HardwareSpec(**small(alpha=1, mesh_height=2)), path)
    optional = ("input_queues", "uncalibrated", "calibration", "description")
    kept = [line for line in path.read_text().splitlines() if not line.startswith(optional)]
    path.write_text("\n".join(kept) + "\n")
    spec = load_hardware(path)
    assert spec.input_queues is None
    assert set(spec.uncalibrated) == set(CALIBRATABLE)
    assert spec.description == ""
    assert spec.cores == 8
    assert spec.alpha == 1


# ----------------------------------------------------------------- bad input
@pytest.mark.parametrize("field", INT_FIELDS)
@pytest.mark.parametrize("value", [0, -3])
def test_int_field_must_be_positive(field, value):
    data = small(**{field: value})
    with pytest.raises(SpecError, match=rf"'{field}' = {value} must be an integer >= 1"):
        HardwareSpec(**data)


@pytest.mark.parametrize("field", INT_FIELDS + ["reserved_colors", "input_queues"])
@pytest.mark.parametrize("value, shown", [(4.5, "4.5"), (4.0, "4.0"), ("4", "'4'"), (True, "True")])
def test_int_field_must_be_integer(field, value, shown):
    with pytest.raises(SpecError, match=rf"'{field}' = {shown} must be an integer"):
        HardwareSpec(**small(**{field: value}))


@pytest.mark.parametrize("field", INT_FIELDS + ["reserved_colors"])
def test_required_int_field_is_not_none(field):
    with pytest.raises(SpecError, match=rf"'{field}' = None must be an integer"):
        HardwareSpec(**small(**{field: None}))


def test_reserved_colors_may_be_zero_not_negative():
    assert HardwareSpec(**small(reserved_colors=0)).route_budget == 10
    with pytest.raises(SpecError, match=r"'reserved_colors' = -1 must be an integer >= 0"):
        HardwareSpec(**small(reserved_colors=-1))


@pytest.mark.parametrize("value", [0, -2])
def test_input_queues_must_be_positive(value):
    with pytest.raises(SpecError, match=rf"'input_queues' = {value} must be an integer >= 1"):
        HardwareSpec(**small(input_queues=value))


@pytest.mark.parametrize("reserved, colors", [(10, 10), (11, 10), (24, 24)])
def test_reserved_colors_below_colors(reserved, colors):
    with pytest.raises(
        SpecError,
        match=rf"'reserved_colors' = {reserved} must be smaller than 'colors' = {colors}",
    ):
        HardwareSpec(**small(reserved_colors=reserved, colors=colors))


def test_mesh_wider_than_wse2_fabric():
    message = r"'mesh_width' = 800 exceeds the fabric width 757; allowed 1\.\.757"
    with pytest.raises(SpecError, match=message):
        load_hardware("wse2").with_mesh(800, 10)


def test_mesh_taller_than_wse2_fabric():
    with pytest.raises(SpecError, match=r"'mesh_height' = 997 exceeds the fabric height 996"):
        load_hardware("wse2").with_mesh(10, 997)


def test_mesh_larger_than_fabric_in_toml(tmp_path):
    path = tmp_path / "big.toml"
    save_hardware(load_hardware("wse3"), path)
    path.write_text(path.read_text().replace("mesh_width = 762", "mesh_width = 800"))
    with pytest.raises(SpecError, match=r"'mesh_width' = 800 exceeds the fabric width 762"):
        load_hardware(path)


@pytest.mark.parametrize("field", STRICT_POSITIVE_NUMBERS)
@pytest.mark.parametrize("value", [0, 0.0, -1.5])
def test_strictly_positive_numbers(field, value):
    with pytest.raises(SpecError, match=rf"'{field}' = {value} must be a finite number > 0"):
        HardwareSpec(**small(**{field: value}))


@pytest.mark.parametrize("field", NON_NEGATIVE_NUMBERS)
def test_non_negative_numbers(field):
    assert getattr(HardwareSpec(**small(**{field: 0.0})), field) == 0.0
    with pytest.raises(SpecError, match=rf"'{field}' = -0.5 must be a finite number >= 0"):
        HardwareSpec(**small(**{field: -0.5}))


@pytest.mark.parametrize("field", STRICT_POSITIVE_NUMBERS + NON_NEGATIVE_NUMBERS)
@pytest.mark.parametrize(
    "value, shown", [(math.inf, "inf"), (math.nan, "nan"), ("1.0", "'1.0'"), (True, "True")]
)
def test_numbers_must_be_finite_numbers(field, value, shown):
    with pytest.raises(SpecError, match=rf"'{field}' = {shown} must be a finite number"):
        HardwareSpec(**small(**{field: value}))


@pytest.mark.parametrize("value", ["", 7, None])
def test_name_must_be_nonempty_string(value):
    with pytest.raises(SpecError, match=r"'name' = .* must be a non-empty string"):
        HardwareSpec(**small(name=value))


def test_uncalibrated_names_checked():
    with pytest.raises(SpecError, match=r"'uncalibrated' = .*'gamma'.* must list names among "):
        HardwareSpec(**small(uncalibrated=("alpha", "gamma")))
    with pytest.raises(SpecError, match=r"'uncalibrated' = 'alpha'"):
        HardwareSpec(**small(uncalibrated="alpha"))


def test_calibration_and_description_types():
    with pytest.raises(SpecError, match=r"'calibration' = '' must be a non-empty string"):
        HardwareSpec(**small(calibration=""))
    with pytest.raises(SpecError, match=r"'description' = 3 must be a string"):
        HardwareSpec(**small(description=3))


def test_unknown_key_in_toml(tmp_path):
    spec = load_hardware("wse2")
    path = tmp_path / "hw.toml"
    save_hardware(spec, path)
    path.write_text(path.read_text() + "mesh_widht = 10\nbogus = 1\n")
    message = r"unknown field\(s\) 'bogus', 'mesh_widht'; allowed: name, fabric_width, "
    with pytest.raises(SpecError, match=message):
        load_hardware(path)


def test_unknown_key_from_dict_names_owner():
    with pytest.raises(SpecError, match=r"^my chip: unknown field\(s\) 'speed'"):
        HardwareSpec.from_dict(small(speed=3), owner="my chip")


@pytest.mark.parametrize("missing", ["colors", "alpha", "name"])
def test_missing_key_in_toml(missing, tmp_path):
    path = tmp_path / "hw.toml"
    save_hardware(HardwareSpec(**small()), path)
    kept = [line for line in path.read_text().splitlines() if not line.startswith(f"{missing} =")]
    path.write_text("\n".join(kept) + "\n")
    with pytest.raises(SpecError, match=rf"missing required field\(s\) '{missing}'"):
        load_hardware(path)


def test_bad_value_in_toml_names_file_and_field(tmp_path):
    path = tmp_path / "hw.toml"
    save_hardware(HardwareSpec(**small()), path)
    path.write_text(path.read_text().replace("colors = 10", "colors = 4.5"))
    message = r"^hardware 'tiny': field 'colors' = 4\.5 must be an integer"
    with pytest.raises(SpecError, match=message):
        load_hardware(path)


def test_invalid_toml(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("name = \nmesh_width = [1,\n")
    with pytest.raises(SpecError, match=r"broken\.toml' is not valid TOML"):
        load_hardware(path)


def test_unknown_preset_or_missing_file(tmp_path):
    with pytest.raises(SpecError, match=r"hardware 'wse9' is neither a preset \(.*wse2.*\)"):
        load_hardware("wse9")
    with pytest.raises(SpecError, match=r"nope\.toml' is neither a preset"):
        load_hardware(tmp_path / "nope.toml")


def test_directory_is_not_a_spec(tmp_path):
    with pytest.raises(SpecError, match=r"cannot be read"):
        load_hardware(tmp_path)


def test_replace_unknown_field():
    with pytest.raises(SpecError, match=r"unknown field\(s\) mesh_size"):
        load_hardware("wse2").replace(mesh_size=4)


def test_replace_revalidates():
    message = r"'reserved_colors' = 24 must be smaller than 'colors' = 24"
    with pytest.raises(SpecError, match=message):
        load_hardware("wse2").replace(reserved_colors=24)


def test_wse3_preset_carries_the_fitted_values():
    spec = load_hardware("wse3")
    assert spec.uncalibrated == ()
    assert "fitted" in spec.calibration
    # the orders of magnitude DESIGN.md and the measurements suggest
    assert 1.0 < spec.alpha < 5.0 and 5.0 < spec.beta < 30.0 and 1.0 < spec.fma_per_cycle < 16.0

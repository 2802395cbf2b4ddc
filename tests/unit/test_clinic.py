from __future__ import annotations

import pytest

from bot.content.clinic import ClinicConfigError, load_clinic


def test_the_shipped_clinic_file_is_marked_as_placeholders():
    clinic = load_clinic()
    assert clinic.name == "MOD Dermatology"
    assert clinic.placeholders is True
    assert "555-01" in clinic.phone


def test_an_edit_to_the_clinic_file_is_read_without_restart(tmp_path):
    path = tmp_path / "clinic.yml"
    body = "name: A\nphone: '1'\naddress: B\nhours: C\nbooking_url: D\n"
    path.write_text(body)
    assert load_clinic(path).phone == "1"
    path.write_text(body.replace("'1'", "'(402) 555-0199'"))
    import os

    os.utime(path, (1, 1))  # a different mtime, whatever the clock's resolution
    assert load_clinic(path).phone == "(402) 555-0199"


def test_a_missing_field_is_named(tmp_path):
    path = tmp_path / "clinic.yml"
    path.write_text("name: A\nphone: '1'\naddress: B\nhours: C\n")
    with pytest.raises(ClinicConfigError, match="booking_url"):
        load_clinic(path)

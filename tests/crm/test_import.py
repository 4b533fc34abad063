"""`crm contacts import FILE.csv`: E.164 numbers, merging into existing contacts, rejects."""

from __future__ import annotations

import csv
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from crm.cli import cli
from crm.models import Contact
from crm.runtime import Runtime
from tests.conftest import Webhooks, cli_env


def run_import(
    rt: Runtime, tmp_path: Path, content: str | bytes, *extra: str
) -> tuple[Result, Path]:
    source = tmp_path / f"contacts-{uuid.uuid4().hex[:8]}.csv"
    if isinstance(content, str):
        source.write_text(content, encoding="utf-8")
    else:
        source.write_bytes(content)
    rejects = tmp_path / "rejects.csv"
    args = ["contacts", "import", str(source), "--rejects", str(rejects), *extra]
    return CliRunner().invoke(cli, args, env=cli_env(rt)), rejects


def contacts(rt: Runtime) -> list[dict[str, Any]]:
    with rt.session() as session:
        return [
            {
                "name": c.name,
                "email": c.email,
                "phones": sorted(i.value for i in c.identities),
                "tags": c.tag_names,
                "attributes": c.attributes,
            }
            for c in session.scalars(select(Contact).order_by(Contact.id))
        ]


def test_creates_contacts_with_e164_numbers_from_local_format(runtime: Runtime, tmp_path: Path):
    result, rejects = run_import(
        runtime,
        tmp_path,
        "Name,Phone,Email,Tags\n"
        "Ama Mensah,024 123 4567,AMA@Example.com,Lamp;VIP\n"
        "Kofi,+233 20 123 4567,,\n",
    )

    assert result.exit_code == 0, result.output
    assert "Created 2, merged into existing 0, rejected 0." in result.stdout
    assert contacts(runtime) == [
        {
            "name": "Ama Mensah",
            "email": "ama@example.com",
            "phones": ["+233241234567"],
            "tags": ["lamp", "vip"],
            "attributes": {},
        },
        {"name": "Kofi", "email": None, "phones": ["+233201234567"], "tags": [], "attributes": {}},
    ]
    assert not rejects.exists()  # nothing rejected, no file


@pytest.mark.parametrize("batch_size", ["1000", "1"])
def test_same_number_written_differently_merges_into_the_first_row(
    runtime: Runtime, tmp_path: Path, batch_size: str
):
    result, _ = run_import(
        runtime,
        tmp_path,
        "name,phone,tags,city,plan\n"
        "Ama,0241234567,lamp,Accra,\n"
        "Ama Mensah,+233 24 123 4567,vip;lamp,,gold\n",
        "--batch-size",
        batch_size,
    )

    assert result.exit_code == 0, result.output
    assert "Created 1, merged into existing 1, rejected 0." in result.stdout
    [contact] = contacts(runtime)
    assert contact["phones"] == ["+233241234567"]
    assert contact["name"] == "Ama Mensah"
    assert contact["tags"] == ["lamp", "vip"]
    assert contact["attributes"] == {"city": "Accra", "plan": "gold"}


def test_import_merges_into_a_contact_who_texted_in(
    webhooks: Webhooks, runtime: Runtime, tmp_path: Path
):
    webhooks.message()  # from +233241234567
    result, _ = run_import(runtime, tmp_path, "name,mobile\nAma,0241234567\n")

    assert "Created 0, merged into existing 1, rejected 0." in result.stdout
    [contact] = contacts(runtime)
    assert contact["name"] == "Ama"
    assert contact["phones"] == ["+233241234567"]


def test_row_with_an_existing_email_merges_and_adds_the_number(runtime: Runtime, tmp_path: Path):
    result, _ = run_import(
        runtime,
        tmp_path,
        "name,phone,email\nAma,0241234567,ama@example.com\nAma (work),0201234567,Ama@Example.COM\n",
    )

    assert "Created 1, merged into existing 1, rejected 0." in result.stdout
    [contact] = contacts(runtime)
    assert contact["phones"] == ["+233201234567", "+233241234567"]
    assert contact["email"] == "ama@example.com"


def test_rejects_are_reported_with_line_and_reason_and_written_to_a_file(
    runtime: Runtime, tmp_path: Path
):
    result, rejects = run_import(
        runtime,
        tmp_path,
        "name,phone,phone2,email\n"
        "Ama,0241234567,,\n"  # line 2
        "Kofi,0201234567,,\n"  # line 3
        "Both,0241234567,0201234567,\n"  # line 4: two different contacts
        "Shorty,12345,,\n"  # line 5: invalid number
        "Nobody,,,\n"  # line 6: no number
        "Esi,0271234567,,not-an-email\n"  # line 7: bad email
        "Yaw,0501234567,,yaw@example.com\n",  # line 8: fine
    )

    assert result.exit_code == 0, result.output
    assert "Created 3, merged into existing 0, rejected 4." in result.stdout
    assert "line 4: numbers belong to different contacts" in result.stdout
    assert "line 5: not a" in result.stdout and "'12345'" in result.stdout
    assert "line 6: no phone number" in result.stdout
    assert "line 7: invalid email 'not-an-email'" in result.stdout
    assert [c["name"] for c in contacts(runtime)] == ["Ama", "Kofi", "Yaw"]

    with rejects.open(newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    assert [(r["reject_line"], r["name"]) for r in rows] == [
        ("4", "Both"),
        ("5", "Shorty"),
        ("6", "Nobody"),
        ("7", "Esi"),
    ]
    assert rows[0]["phone2"] == "0201234567"
    assert all(r["reject_reason"] for r in rows)
    assert f"Rejected rows written to {rejects}." in result.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("name,email\nAma,ama@example.com\n", "no phone column"),
        ("", "the file is empty"),
        ("name,phone\nAm\xe9,0241234567\n".encode("latin-1"), "not UTF-8"),
    ],
)
def test_unreadable_file_fails_clearly_and_imports_nothing(
    runtime: Runtime, tmp_path: Path, content: str | bytes, message: str
):
    result, _ = run_import(runtime, tmp_path, content)

    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert contacts(runtime) == []


def test_unicode_names_round_trip(runtime: Runtime, tmp_path: Path):
    names = ["Adébáyọ̀ Ọ̀ṣun", "Wanjiru 🌻", "Nana Ama Ɔkyere"]
    body = "".join(f"{name},+23324123456{n}\n" for n, name in enumerate(names))
    content = ("\ufeffName,Phone\n" + body + "Ẹ̀kọ́ 🌻,not a number\n").encode()  # with a BOM

    result, rejects = run_import(runtime, tmp_path, content)

    assert result.exit_code == 0, result.output
    assert "Created 3, merged into existing 0, rejected 1." in result.stdout
    assert [c["name"] for c in contacts(runtime)] == names
    with rejects.open(newline="", encoding="utf-8") as stream:
        assert [r["name"] for r in csv.DictReader(stream)] == ["Ẹ̀kọ́ 🌻"]


def test_over_long_name_or_email_is_a_reject_not_a_failed_import(runtime: Runtime, tmp_path: Path):
    long_email = "a" * 320 + "@example.com"
    result, _ = run_import(
        runtime,
        tmp_path,
        f"name,phone,email\n{'A' * 201},0241234567,\n"
        f"Esi,0271234567,{long_email}\nKofi,0201234567,\n",
    )

    assert result.exit_code == 0, result.output
    assert "Created 1, merged into existing 0, rejected 2." in result.stdout
    assert "line 2: name is longer than 200 characters" in result.stdout
    assert "line 3: email is longer than 320 characters" in result.stdout
    assert [c["name"] for c in contacts(runtime)] == ["Kofi"]

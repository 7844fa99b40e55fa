from engine.contact_index import ContactIndexRecord, contact_index_records, email_key, phone_key


def test_new_contacts_are_indexed_under_normalised_keys() -> None:
    assert contact_index_records(None, None, " Ana@Example.COM ", "+59899123456", "c-1") == [
        ContactIndexRecord("email:ana@example.com", "c-1"),
        ContactIndexRecord("phone:+59899123456", "c-1"),
    ]


def test_a_changed_phone_removes_the_old_key_and_adds_the_new_one() -> None:
    assert contact_index_records("a@x.com", "+59899000001", "a@x.com", "+59899000002", "c-1") == [
        ContactIndexRecord("phone:+59899000001", None),
        ContactIndexRecord("phone:+59899000002", "c-1"),
    ]


def test_unchanged_contacts_write_nothing_even_when_the_case_differs() -> None:
    assert contact_index_records("Ana@x.com", "+1555", "ana@X.com", "+1555", "c-1") == []


def test_an_erased_customer_tombstones_every_address() -> None:
    assert contact_index_records("a@x.com", "+1555", None, None, "c-1") == [
        ContactIndexRecord("email:a@x.com", None),
        ContactIndexRecord("phone:+1555", None),
    ]


def test_keys_have_the_documented_form() -> None:
    assert (email_key("A@B.C"), phone_key("+44 ")) == ("email:a@b.c", "phone:+44")
